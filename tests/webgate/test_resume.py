"""Resume's paging against a fake broker that caps pages like the real one (100)."""

from __future__ import annotations

from chorus.wire.pb import broker_pb2
from chorus.webgate.resume import missed_since as _missed

PAGE_CAP = 100


class PagedBroker:
    def __init__(self, count: int):
        self.seqs = list(range(1, count + 1))
        self.calls = 0

    async def history(self, group, *, before_seq=0, after_seq=None, limit):
        self.calls += 1
        limit = min(limit, PAGE_CAP)
        if after_seq is not None:
            page = [s for s in self.seqs if s > after_seq][:limit]
            more = len([s for s in self.seqs if s > after_seq]) > limit
        else:
            newer_first = self.seqs[::-1]
            page, more = newer_first[:limit], len(newer_first) > limit
        return [broker_pb2.Delivery(group_id=group, seq=s) for s in page], more


async def test_a_gap_larger_than_one_broker_page_is_replayed_in_full():
    broker = PagedBroker(220)
    missed = await _missed(broker, "g", since=50, bound=200)  # 170 missed: two broker pages
    assert [m.seq for m in missed] == list(range(51, 221))
    assert broker.calls == 2, "it paged past the broker's cap"


async def test_more_than_the_bound_is_a_reset_and_within_it_is_everything():
    assert await _missed(PagedBroker(300), "g", since=10, bound=200) is None   # 290 missed
    missed = await _missed(PagedBroker(150), "g", since=10, bound=200)         # 140 missed
    assert [m.seq for m in missed] == list(range(11, 151))
    assert await _missed(PagedBroker(5), "g", since=5, bound=200) == []


async def test_from_zero_is_the_whole_group_oldest_first_or_a_reset():
    assert [m.seq for m in await _missed(PagedBroker(7), "g", since=0, bound=200)] == list(range(1, 8))
    assert [m.seq for m in await _missed(PagedBroker(150), "g", since=0, bound=200)] == list(range(1, 151))
    assert await _missed(PagedBroker(201), "g", since=0, bound=200) is None
