"""Fixtures for the broker suite: an in-memory message store with a switch to make it fail."""

from __future__ import annotations

import pytest

from chorus.broker.errors import StoreUnavailable
from chorus.broker.records import StoredMessage


class FakeStore:
    """The broker's Store in memory, for core tests that need no database.

    ``failing = True`` makes every call raise StoreUnavailable, as a dead database would;
    ``batches`` records each append_batch call (the group commits)."""

    def __init__(self):
        self.messages: dict[tuple[str, int], StoredMessage] = {}
        self.markers: dict[tuple[str, str], int] = {}
        self.batches: list[list[StoredMessage]] = []
        self.last_seqs_calls: list[list[str]] = []
        self.keys: dict[tuple[str, str], object] = {}  # (sender_key, idempotency_key) -> SentKey
        self.find_keys_calls = 0
        self.failing = False

    def _check(self):
        if self.failing:
            raise StoreUnavailable("the message store is unavailable; try again")

    def last_seqs(self, group_ids):
        self._check()
        wanted = list(dict.fromkeys(group_ids))
        self.last_seqs_calls.append(wanted)
        return {g: max((s for (gg, s) in self.messages if gg == g), default=0) for g in wanted}

    def append_batch(self, messages, keys=(), fence=None):
        self._check()
        seqs = [(m.group_id, m.seq) for m in messages]
        if len(set(seqs)) != len(seqs) or any(k in self.messages for k in seqs):
            raise StoreUnavailable("duplicate seq")  # what the primary key would refuse
        pairs = [(k.sender_key, k.idempotency_key) for k in keys]
        if len(set(pairs)) != len(pairs) or any(p in self.keys for p in pairs):
            raise StoreUnavailable("duplicate key")
        self.batches.append(list(messages))
        self.messages.update(zip(seqs, messages))
        self.keys.update(zip(pairs, keys))

    def find_keys(self, wanted):
        self._check()
        self.find_keys_calls += 1
        return {pair: self.keys[pair] for pair in wanted if pair in self.keys}

    def forget_keys_before(self, ts_ms):
        self._check()
        old = [pair for pair, key in self.keys.items() if key.ts_ms < ts_ms]
        for pair in old:
            del self.keys[pair]
        return len(old)

    def page(self, group_id, *, before_seq=0, after_seq=None, limit):
        self._check()
        seqs = sorted(s for (g, s) in self.messages if g == group_id)
        if after_seq is not None:
            chosen = [s for s in seqs if s > after_seq]
        else:
            chosen = [s for s in reversed(seqs) if not before_seq or s < before_seq]
        return [self.messages[(group_id, s)] for s in chosen[:limit]], len(chosen) > limit

    def mark_read(self, account_id, group_id, seq):
        self._check()
        key = (account_id, group_id)
        self.markers[key] = max(seq, self.markers.get(key, 0))

    def read_seqs(self, account_id, group_ids):
        self._check()
        return {g: self.markers.get((account_id, g), 0) for g in group_ids}

    def seqs_of(self, group_id) -> list[int]:
        return sorted(s for (g, s) in self.messages if g == group_id)


@pytest.fixture
def fake_store():
    return FakeStore()
