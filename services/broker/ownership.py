"""Which groups this broker owns, and what to do with a request for any other: no SQL, no sockets.

Several brokers share one database; each group has ONE owner at a time, the
only broker that sequences, stores and publishes its messages. The owner a
group should have is the rendezvous winner among the live brokers
(chorus.wire.cluster); the owner it HAS is a row in the database
(cluster_store.py) carrying an epoch, a fencing token that grows each time the
group changes hands.

Invariants:
- A post is taken only for a group in ``owned`` (claimed under a known epoch),
  or for one this broker is the rendezvous winner of and claims at the next
  flush; for any other group the answer is MOVED with the winner's name.
- Every batch is stored with a fence: the store checks, in the same
  transaction, that each group's owner row still names this node, this
  incarnation and the epoch we hold. A broker paused past its lease whose
  groups moved therefore stores nothing, publishes nothing and acks nothing
  for them: its batch is refused and the groups are dropped from ``owned``.
- When the live set changes, groups whose winner is now another node are
  released (after the pending posts are flushed), so ownership follows the
  hash and a joining broker gets its share without anyone restarting.
- A node is its ``name`` (stable across restarts) plus an ``incarnation``
  (new each start): a restarted broker takes its own groups back at once
  instead of waiting for its previous lease to run out.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from chorus.wire.cluster import ClusterMap

__all__ = ["Ownership", "Owned", "Claim", "MovedTo", "Fence"]


@dataclass(frozen=True, slots=True)
class Owned:
    epoch: int


@dataclass(frozen=True, slots=True)
class Claim:
    """Ours by the hash, not yet by the database: claim it at the next flush."""


@dataclass(frozen=True, slots=True)
class MovedTo:
    node: str | None  # None: nobody known (the cluster view is empty): try again shortly


@dataclass(frozen=True, slots=True)
class Fence:
    """What a batch's commit must find in the owner rows, group by group."""

    node: str
    incarnation: str
    epochs: dict[str, int] = field(default_factory=dict)


class Ownership:
    def __init__(self, node: str, incarnation: str) -> None:
        self.node = node
        self.incarnation = incarnation
        self.cluster = ClusterMap()
        self.owned: dict[str, int] = {}  # group -> epoch we hold it under

    def route(self, group_id: str) -> Owned | Claim | MovedTo:
        epoch = self.owned.get(group_id)
        if epoch is not None:
            return Owned(epoch)
        winner = self.cluster.owner_of(group_id)
        if winner == self.node:
            return Claim()
        return MovedTo(winner)

    def claimed(self, group_id: str, epoch: int) -> None:
        self.owned[group_id] = epoch

    def lost(self, groups: Iterable[str]) -> None:
        """The database says these are not ours (any more): forget them."""
        for group in groups:
            self.owned.pop(group, None)

    def fence(self, groups: Iterable[str]) -> Fence:
        return Fence(self.node, self.incarnation, {g: self.owned[g] for g in groups})

    def new_cluster(self, cluster: ClusterMap) -> list[str]:
        """Take a new view of the live brokers; the owned groups to release because another
        node now wins them (release them after flushing their pending posts)."""
        self.cluster = cluster
        if self.node not in cluster.nodes:  # we are not even in it (our lease lapsed): keep
            return []                       # what we hold; the fence decides if it still is
        return [g for g in self.owned if cluster.owner_of(g) != self.node]
