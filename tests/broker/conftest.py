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
        self.failing = False

    def _check(self):
        if self.failing:
            raise StoreUnavailable("the message store is unavailable; try again")

    def last_seqs(self, group_ids):
        self._check()
        wanted = list(dict.fromkeys(group_ids))
        self.last_seqs_calls.append(wanted)
        return {g: max((s for (gg, s) in self.messages if gg == g), default=0) for g in wanted}

    def append_batch(self, messages):
        self._check()
        keys = [(m.group_id, m.seq) for m in messages]
        if len(set(keys)) != len(keys) or any(k in self.messages for k in keys):
            raise StoreUnavailable("duplicate seq")  # what the primary key would refuse
        self.batches.append(list(messages))
        self.messages.update(zip(keys, messages))

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
