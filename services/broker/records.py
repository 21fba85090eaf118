"""What the core and the message store exchange: plain values and the store's interface.

The core depends on ``Store`` (a Protocol), never on SQL: storage.MessageStore
implements it for real, and tests pass a small in-memory fake.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

__all__ = ["StoredMessage", "SentKey", "Store", "ClusterTables", "Claimed", "HeldBy", "Fenced"]


@dataclass(frozen=True, slots=True)
class StoredMessage:
    group_id: str
    seq: int
    ts_ms: int
    sender_id: str
    sender_username: str
    sender_display_name: str
    text: str


@dataclass(frozen=True, slots=True)
class SentKey:
    """A post's idempotency key and where its message went: a repeat gets the same answer."""

    sender_key: str        # the account id, or "system:" + the sender name for backends' posts
    idempotency_key: str
    group_id: str
    seq: int
    ts_ms: int


@dataclass(frozen=True, slots=True)
class Claimed:
    """A group this broker now owns, under ``epoch``, with its last stored seq."""

    epoch: int
    last_seq: int


@dataclass(frozen=True, slots=True)
class HeldBy:
    """A group a live broker (``node``) owns."""

    node: str


class Fenced(Exception):
    """A batch's groups (some of them) are no longer this broker's: nothing of it was stored."""

    def __init__(self, groups: list[str]) -> None:
        super().__init__(f"not the owner of {len(groups)} group(s) any more")
        self.groups = groups


class Store(Protocol):
    """Every method raises errors.StoreUnavailable when the database fails."""

    def last_seqs(self, group_ids: Iterable[str]) -> dict[str, int]:
        """Highest stored seq per group, 0 for a group with none."""

    def append_batch(self, messages: Sequence[StoredMessage], keys: Sequence[SentKey] = (),
                     fence=None) -> None:
        """Store all of ``messages`` and ``keys`` in one transaction, or none of them; with a
        fence (ownership.Fence), raise Fenced naming the groups whose owner row moved."""

    def find_keys(self, wanted: Iterable[tuple[str, str]]) -> dict[tuple[str, str], SentKey]:
        """The stored keys among (sender_key, idempotency_key) pairs, in one query."""

    def forget_keys_before(self, ts_ms: int) -> int:
        """Drop keys of messages stored before ``ts_ms``; how many."""

    def page(self, group_id: str, *, before_seq: int = 0, after_seq: int | None = None,
             limit: int) -> tuple[list[StoredMessage], bool]:
        """Oldest first above after_seq when given, else newest first below before_seq
        (latest when 0); and whether more exist."""

    def mark_read(self, account_id: str, group_id: str, seq: int) -> None:
        """Raise the account's read marker in the group to ``seq``; never lowers it."""

    def read_seqs(self, account_id: str, group_ids: Iterable[str]) -> dict[str, int]:
        """The account's read marker per group, 0 when none."""


class ClusterTables(Protocol):
    """Leases and owners (cluster_store.ClusterStore); every method may raise StoreUnavailable."""

    def heartbeat(self, me, incarnation: str, lease_ms: int) -> list:
        """Renew our lease; the live nodes (chorus.wire.cluster.Node), us included."""

    def claim(self, groups: Iterable[str], node: str, incarnation: str) -> dict[str, Claimed | HeldBy]:
        """Take the groups that are free, released, dead-owned or our previous incarnation's."""

    def release(self, groups: Iterable[str], node: str, incarnation: str) -> None:
        """Let go of groups another node now wins."""

    def leave(self, node: str, incarnation: str) -> None:
        """Release everything and drop our lease (a graceful stop)."""
