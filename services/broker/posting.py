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
- Only the broker loop touches this object (one thread); the store is the
  only other party.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from chorus.wire.pb import broker_pb2

from .errors import StoreUnavailable
from .outputs import Output, Publish, failure, reply
from .records import SentKey, Store, StoredMessage
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
    def __init__(self, store: Store, *, wall_clock_ms: Callable[[], int]) -> None:
        self._store = store
        self._wall_clock_ms = wall_clock_ms
        self._pending: list[PendingPost] = []
        self._last_seq: dict[str, int] = {}  # committed seqs only

    def __len__(self) -> int:
        return len(self._pending)

    def add(self, post: PendingPost) -> None:
        self._pending.append(post)

    def last_seqs(self, group_ids: Iterable[str]) -> dict[str, int]:
        """The last committed seq of each group, from memory or else (one query) the store."""
        wanted = list(dict.fromkeys(group_ids))
        missing = [g for g in wanted if g not in self._last_seq]
        if missing:
            self._last_seq.update(self._store.last_seqs(missing))
        return {g: self._last_seq[g] for g in wanted}

    def flush(self) -> list[Output]:
        """Store every pending post in one transaction; publications and acks, or failures."""
        batch, self._pending = self._pending, []
        if not batch:
            return []
        groups = list(dict.fromkeys(post.group_id for post in batch))
        try:
            answers, stored, keys, next_seq = self._number(batch, groups)
            self._store.append_batch(stored, keys)
        except Exception as exc:
            if not isinstance(exc, StoreUnavailable):
                log.exception("storing a batch of %d posts failed unexpectedly; refused them all", len(batch))
            for group in groups:
                self._last_seq.pop(group, None)
            refusal = StoreUnavailable(NOT_STORED)
            return [failure(post.identity, post.request_id, refusal) for post in batch]
        self._last_seq.update(next_seq)
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
