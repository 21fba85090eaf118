"""Group commit: accepted posts wait here until the driver's ``flush``, once per poll round.

Invariants:
- Nothing is published or acked before it is stored: ``flush`` appends the
  whole batch in ONE store transaction, and only after that returns does it
  emit, per post and in arrival order, the Delivery publication and the ack.
- Seqs are strictly increasing and gap-free per group, across restarts: the
  counter of a group is loaded from the store (``last_seqs``, one query for
  all groups of a batch) the first time it is needed after start, and it only
  advances when the batch holding the new seqs has been committed.
- A failed batch publishes nothing: every post in it gets Failure UNAVAILABLE
  and the counters of its groups are forgotten, so they are reloaded from the
  store next time. Any exception counts, not only the store's expected
  StoreUnavailable: a driver error we did not foresee (PostgreSQL's DataError
  for a NUL once killed the broker loop here) fails that batch, is logged with
  its traceback, and the loop goes on. A commit that landed although the driver reported an error
  is therefore never overwritten or skipped past; the sender, told "not stored",
  may then post a duplicate, which is the safe side of an ambiguous failure.
- Exactly once per idempotency key: a post carrying a key that a stored
  message already has (same sender; found in one query per batch, or earlier
  in the same batch) stores and publishes nothing and is answered with the
  original group, seq and ts (``repeat``). A new key is stored in the SAME
  transaction as its message, so a crash after the commit and before the ack
  leaves both or neither: the sender's retry finds the key either way.
  Keys are forgotten ``retention`` after their message (``forget_old_keys``).
- With ownership (a cluster, the default outside tests; ownership.py): only
  groups this broker owns are numbered and stored. A round's groups not yet
  owned are claimed first (one transaction for all of them); those a live
  broker holds are answered MOVED. Every batch carries a fence: if the store
  finds a group moved meanwhile (``Fenced``), that group's posts are answered
  MOVED, it is forgotten, and the rest of the round is stored without it.
  A group's counter comes from its claim (the owner row's last seq) and is
  kept only while the group is owned.
- Only the broker loop touches this object (one thread); the store is the
  only other party.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from chorus.wire.pb import broker_pb2

from .errors import Moved, StoreUnavailable
from .outputs import Output, Publish, failure, reply
from .ownership import Ownership
from .records import ClusterTables, Fenced, HeldBy, SentKey, Store, StoredMessage
from chorus.wire.topics import group_topic

__all__ = ["PendingPost", "PostBatcher", "delivery_of", "NOT_STORED"]

NOT_STORED = "message not stored; try again"

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PendingPost:
    identity: bytes
    request_id: int
    group_id: str
    sender: broker_pb2.Person
    text: str
    idempotency_key: str = ""
    sender_key: str = ""  # whose keys these are: the account id, or "system:" + the sender name

    @property
    def key(self) -> tuple[str, str]:
        return (self.sender_key or self.sender.id, self.idempotency_key)


def delivery_of(message: StoredMessage) -> broker_pb2.Delivery:
    sender = broker_pb2.Person(id=message.sender_id, username=message.sender_username,
                               display_name=message.sender_display_name)
    return broker_pb2.Delivery(group_id=message.group_id, seq=message.seq, ts_ms=message.ts_ms,
                               sender=sender, text=message.text)


class PostBatcher:
    def __init__(self, store: Store, *, wall_clock_ms: Callable[[], int],
                 ownership: Ownership | None = None, cluster: ClusterTables | None = None) -> None:
        self._store = store
        self._wall_clock_ms = wall_clock_ms
        self._ownership = ownership
        self._cluster = cluster
        self._pending: list[PendingPost] = []
        self._last_seq: dict[str, int] = {}  # committed seqs only (of owned groups, with ownership)

    def __len__(self) -> int:
        return len(self._pending)

    def add(self, post: PendingPost) -> None:
        self._pending.append(post)

    def last_seqs(self, group_ids: Iterable[str]) -> dict[str, int]:
        """The last committed seq of each group, from memory or else (one query) the store."""
        wanted = list(dict.fromkeys(group_ids))
        missing = [g for g in wanted if g not in self._last_seq]
        if missing:
            found = self._store.last_seqs(missing)
            if self._ownership is None:
                self._last_seq.update(found)
            else:  # another broker may be storing the groups we do not own: never cache those
                owned = self._ownership.owned
                self._last_seq.update({g: seq for g, seq in found.items() if g in owned})
                return {g: self._last_seq.get(g, found.get(g, 0)) for g in wanted}
        return {g: self._last_seq[g] for g in wanted}

    def forget(self, groups: Iterable[str]) -> None:
        """Drop the counters of groups no longer ours (moved, released)."""
        for group in groups:
            self._last_seq.pop(group, None)

    def flush(self) -> list[Output]:
        """Store every pending post in one transaction; publications and acks, or failures."""
        batch, self._pending = self._pending, []
        if not batch:
            return []
        outputs: list[Output] = []
        if self._ownership is not None:
            batch = self._claim(batch, outputs)
        while batch:
            groups = list(dict.fromkeys(post.group_id for post in batch))
            try:
                answers, stored, keys, next_seq = self._number(batch, groups)
                fence = self._ownership.fence(groups) if self._ownership is not None else None
                self._store.append_batch(stored, keys, fence)
            except Fenced as fenced:  # some groups moved while we held them: the others go again
                self._ownership.lost(fenced.groups)
                self.forget(fenced.groups)
                batch = self._refuse_moved(batch, set(fenced.groups), outputs)
                continue
            except Exception as exc:
                if not isinstance(exc, StoreUnavailable):
                    log.exception("storing a batch of %d posts failed unexpectedly; refused them all", len(batch))
                self.forget(groups)
                refusal = StoreUnavailable(NOT_STORED)
                return outputs + [failure(post.identity, post.request_id, refusal) for post in batch]
            self._last_seq.update(next_seq)
            outputs += self._answers(answers)
            break
        return outputs

    def _claim(self, batch: list[PendingPost], outputs: list[Output]) -> list[PendingPost]:
        """Claim the round's groups we do not own yet; the posts of groups we may store."""
        ownership = self._ownership
        wanted = list(dict.fromkeys(p.group_id for p in batch if p.group_id not in ownership.owned))
        if not wanted:
            return batch
        try:
            claims = self._cluster.claim(wanted, ownership.node, ownership.incarnation)
        except StoreUnavailable:
            refusal = StoreUnavailable(NOT_STORED)
            outputs += [failure(p.identity, p.request_id, refusal) for p in batch if p.group_id in wanted]
            return [p for p in batch if p.group_id not in wanted]
        held = {}
        for group, claim in claims.items():
            if isinstance(claim, HeldBy):
                held[group] = claim.node
            else:
                ownership.claimed(group, claim.epoch)
                self._last_seq[group] = claim.last_seq
        return self._refuse_moved(batch, held, outputs)

    def _refuse_moved(self, batch: list[PendingPost], moved, outputs: list[Output]) -> list[PendingPost]:
        """Answer MOVED for the posts of ``moved`` groups (a set, or group -> owner); the others."""
        keep = []
        for post in batch:
            if post.group_id not in moved:
                keep.append(post)
                continue
            owner = moved.get(post.group_id) if isinstance(moved, dict) else None
            if owner is None:
                owner = self._ownership.cluster.owner_of(post.group_id)
            refusal = Moved(f"group {post.group_id!r} is owned by another broker")
            refusal.moved_to = "" if owner in (None, self._ownership.node) else owner
            outputs.append(failure(post.identity, post.request_id, refusal))
        return keep

    def _answers(self, answers) -> list[Output]:
        outputs: list[Output] = []
        for post, sent, message in answers:
            if message is not None:
                outputs.append(Publish(group_topic(message.group_id), delivery_of(message).SerializeToString()))
            posted = broker_pb2.Posted(group_id=sent.group_id, seq=sent.seq, ts_ms=sent.ts_ms,
                                       repeat=message is None)
            outputs.append(reply(post.identity, post.request_id, posted=posted))
        return outputs

    def _number(self, batch: list[PendingPost], groups: list[str]):
        """Seqs for the new posts, and each post's answer: (post, SentKey, the new message or None
        for a repeat)."""
        keyed = [post.key for post in batch if post.idempotency_key]
        known = dict(self._store.find_keys(keyed)) if keyed else {}
        next_seq = self.last_seqs(groups)
        ts_ms = self._wall_clock_ms()
        answers: list[tuple[PendingPost, SentKey, StoredMessage | None]] = []
        stored: list[StoredMessage] = []
        keys: list[SentKey] = []
        for post in batch:
            if post.idempotency_key and post.key in known:
                answers.append((post, known[post.key], None))
                continue
            seq = next_seq[post.group_id] = next_seq[post.group_id] + 1
            message = StoredMessage(post.group_id, seq, ts_ms, post.sender.id, post.sender.username,
                                    post.sender.display_name, post.text)
            stored.append(message)
            sent = SentKey(post.key[0], post.idempotency_key, post.group_id, seq, ts_ms)
            if post.idempotency_key:
                keys.append(sent)
                known[post.key] = sent  # a repeat later in this batch gets this answer
            answers.append((post, sent, message))
        return answers, stored, keys, next_seq

    def forget_old_keys(self, retention_ms: int) -> None:
        """Drop keys older than the retention; a failure is logged and tried again next time."""
        try:
            dropped = self._store.forget_keys_before(self._wall_clock_ms() - retention_ms)
        except Exception:
            log.exception("forgetting old idempotency keys failed")
            return
        if dropped:
            log.info("forgot %d idempotency keys older than %.0f h", dropped, retention_ms / 3_600_000)
