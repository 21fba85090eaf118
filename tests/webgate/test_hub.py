"""The hub's bookkeeping against a fake broker client: subscriptions stay right
when registration fails, and membership events reach exactly the right sessions."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from chorus.wire.pb import broker_pb2
from chorus.webgate.errors import Unavailable
from chorus.webgate.catchup import CATCH_UP_MAX_PAGES, CATCH_UP_PAGE
from chorus.webgate.hub import Hub
from chorus.webgate.sessions import Session
from wsframes import read_frames


class FakeBroker:
    """The Broker interface the hub uses, with subscriptions recorded; ``sink`` is the hub its
    publications go to (in the gateway: the Publications feed)."""

    def __init__(self):
        self.subscribed: set[str] = set()
        self.failing_sync = False
        self.opened: list[str] = []
        self.stored: dict[str, list] = {}        # group -> Deliveries the broker holds
        self.live_during_sync: list = []

    def subscribe(self, group):
        assert group not in self.subscribed, f"subscribed twice to {group}"
        self.subscribed.add(group)

    def unsubscribe(self, group):
        assert group in self.subscribed, f"unsubscribed from {group} without a subscription"
        self.subscribed.remove(group)

    async def sync(self):
        if self.failing_sync:
            raise Unavailable("broker down")
        if self.live_during_sync:  # publications that arrive while the hub waits
            self.sink.deliver(self.live_during_sync)
            self.live_during_sync = []

    async def history(self, group, *, after_seq, limit):
        newer = [d for d in self.stored.get(group, []) if d.seq > after_seq]
        return newer[:limit], len(newer) > limit

    async def open_session(self, session_id, user, groups):
        self.opened.append(session_id)

    async def close_session(self, session_id):
        pass


class Transport:
    def __init__(self):
        self.frames: list[dict] = []
        self.writes = 0

    def write(self, data):
        self.writes += 1
        self.frames += [orjson.loads(frame.data) for frame in read_frames(data)]

    def get_write_buffer_size(self):
        return 0

    def is_closing(self):
        return False


def session(sid, account, groups):
    return Session(sid, {"id": account, "username": account, "display_name": account},
                   dict.fromkeys(groups, "name"), Transport(), max_send_buffer_bytes=1 << 20,
                   on_overflow=lambda s: None)


@pytest.fixture
async def hub():
    broker = FakeBroker()
    hub = Hub(broker)
    broker.sink = hub
    worker = asyncio.create_task(hub.run_events())
    yield hub
    worker.cancel()


async def live(hub, s):
    await hub.register(s)
    hub.attach(s)
    return s


def delivery(group, text, seq=1):
    return broker_pb2.Delivery(group_id=group, seq=seq, ts_ms=1, text=text,
                               sender=broker_pb2.Person(id="x")).SerializeToString()


async def test_a_batch_reaches_each_socket_in_one_write_in_publication_order(hub):
    both = await live(hub, session("s1", "alice", ["g1", "g2"]))
    one = await live(hub, session("s2", "bob", ["g2"]))
    hub.deliver([("g1", delivery("g1", "a", 1)), ("g2", delivery("g2", "b", 1)),
                              ("g1", delivery("g1", "c", 2)), ("g3", delivery("g3", "nobody", 1))])
    assert [f["text"] for f in both.transport.frames] == ["a", "b", "c"]
    assert both.transport.writes == 1, "three frames, one syscall"
    assert [f["text"] for f in one.transport.frames] == ["b"]
    # a seq already fanned out is not sent again, in a batch or alone
    hub.deliver([("g1", delivery("g1", "c", 2)), ("g1", delivery("g1", "d", 3))])
    hub.deliver([("g2", delivery("g2", "b", 1))])
    assert [f["text"] for f in both.transport.frames] == ["a", "b", "c", "d"]


async def test_after_a_broker_restart_each_group_is_caught_up_once_and_in_order(hub):
    page = await live(hub, session("s1", "alice", ["g1"]))
    hub.deliver([("g1", delivery("g1", "m1", 1))])
    # The new broker stored 2..4 before our subscription reached it; 3 and 4 also arrive live.
    hub.broker.stored = {"g1": [broker_pb2.Delivery.FromString(delivery("g1", f"m{n}", n)) for n in (1, 2, 3, 4)]}
    hub.broker.live_during_sync = [("g1", delivery("g1", "m3", 3)), ("g1", delivery("g1", "m4", 4))]
    await hub.broker_restarted()
    hub.deliver([("g1", delivery("g1", "m5", 5))])
    assert [f["seq"] for f in page.transport.frames] == [1, 2, 3, 4, 5]
    assert hub.broker.opened.count("s1") == 2, "registered again with the new broker"


async def test_a_group_that_missed_too_much_during_a_broker_restart_gets_reset(hub):
    page = await live(hub, session("s1", "alice", ["g1"]))
    hub.deliver([("g1", delivery("g1", "m1", 1))])
    missed = CATCH_UP_PAGE * CATCH_UP_MAX_PAGES + 5
    hub.broker.stored = {"g1": [broker_pb2.Delivery.FromString(delivery("g1", "m", n))
                                for n in range(2, missed + 2)]}
    await hub.broker_restarted()
    assert page.transport.frames[-1] == {"op": "reset", "group": "g1"}
    assert len(page.transport.frames) == 1 + CATCH_UP_PAGE * CATCH_UP_MAX_PAGES + 1


async def test_an_unreadable_publication_in_a_batch_does_not_stop_the_others(hub):
    page = await live(hub, session("s1", "alice", ["g1"]))
    hub.deliver([("g1", b"\xff not a Delivery"), ("g1", delivery("g1", "fine", 1))])
    assert [f["text"] for f in page.transport.frames] == ["fine"]


async def test_a_failed_registration_leaves_other_sessions_subscriptions_alone(hub):
    alice = await live(hub, session("s1", "alice", ["g1"]))
    hub.broker.failing_sync = True
    bob = session("s2", "bob", ["g1", "g2"])
    with pytest.raises(Unavailable):
        await hub.register(bob)
    await hub.unregister(bob)  # what the WebSocket handler does on its way out
    await hub.unregister(bob)
    assert hub.broker.subscribed == {"g1"}, "g1 still needed by alice; g2 given back"
    hub.deliver([("g1", delivery("g1", "still here"))])
    assert alice.transport.frames[-1]["text"] == "still here"


async def test_deliveries_reach_only_attached_members_with_one_encoding(hub):
    a = await live(hub, session("s1", "alice", ["g1"]))
    b = await live(hub, session("s2", "bob", ["g1", "g2"]))
    c = await live(hub, session("s3", "carol", ["g2"]))
    hub.deliver([("g1", delivery("g1", "hello"))])
    assert [f["text"] for f in a.transport.frames] == ["hello"]
    assert [f["text"] for f in b.transport.frames] == ["hello"]
    assert c.transport.frames == []


async def test_join_and_leave_events_apply_to_every_session_of_that_account_in_order(hub):
    tab1 = await live(hub, session("s1", "alice", []))
    tab2 = await live(hub, session("s2", "alice", []))
    other = await live(hub, session("s3", "bob", []))
    for number, joined in ((1, True), (2, False), (3, True)):
        hub.membership_event(event("alice", "g9", joined, number))
    await settle()
    for tab in (tab1, tab2):
        assert [f["op"] for f in tab.transport.frames] == ["joined", "left", "joined"]
        assert "g9" in tab.groups
    assert other.transport.frames == []
    assert hub.broker.subscribed == {"g9"}
    await hub.unregister(tab1)
    await hub.unregister(tab2)
    assert hub.broker.subscribed == set(), "the last holder gave the subscription back"


def event(account, group, joined, change_id):
    return broker_pb2.MembershipEvent(account_id=account, group=broker_pb2.GroupRef(id=group, name=group.title()),
                                      joined=joined, change_id=change_id)


async def settle():
    for _ in range(20):  # the events worker applies what was queued
        await asyncio.sleep(0)


@pytest.mark.parametrize("arrivals", [
    [(5, True), (6, False)],
    [(6, False), (5, True)],                                     # another broker's copy of 5 comes late
    [(5, True), (6, False), (5, True), (6, False), (5, True)],   # three brokers, interleaved
    [(6, False), (6, False), (5, True), (5, True)],
])
async def test_a_racing_join_and_leave_end_left_whatever_order_the_brokers_events_arrive_in(hub, arrivals):
    """Two membership replicas committed a join (5) then a leave (6) of alice; every broker
    publishes both, so her page hears each once per broker, in any interleaving."""
    page = await live(hub, session("s1", "alice", ["g1"]))
    for number, joined in arrivals:
        hub.membership_event(event("alice", "g7", joined, number))
    await settle()
    assert "g7" not in page.groups, arrivals
    ops = [f["op"] for f in page.transport.frames]
    assert ops in (["joined", "left"], []), f"{arrivals}: the page saw {ops}"
    assert hub.broker.subscribed == {"g1"}, "g7's subscription, if taken, was given back"


async def test_a_repeat_of_the_newest_change_is_not_shown_twice(hub):
    page = await live(hub, session("s1", "alice", []))
    for _ in range(3):  # one copy per broker
        hub.membership_event(event("alice", "g7", True, 4))
    await settle()
    assert [f["op"] for f in page.transport.frames] == ["joined"]
    assert "g7" in page.groups


async def test_a_join_the_broker_could_not_confirm_may_come_again_from_another_broker(hub):
    page = await live(hub, session("s1", "alice", []))
    hub.broker.failing_sync = True
    hub.membership_event(event("alice", "g7", True, 4))
    await settle()
    assert page.transport.frames == []
    hub.broker.failing_sync = False
    hub.membership_event(event("alice", "g7", True, 4))  # the same change, published by another broker
    await settle()
    assert [f["op"] for f in page.transport.frames] == ["joined"]


async def test_change_numbers_are_kept_only_while_the_account_has_a_page_here(hub):
    tab1 = await live(hub, session("s1", "alice", []))
    tab2 = await live(hub, session("s2", "alice", []))
    hub.membership_event(event("alice", "g7", True, 4))
    hub.membership_event(event("bob", "g7", True, 5))  # no page of bob's here: nothing to keep
    await settle()
    assert hub._order.accounts() == 1
    await hub.unregister(tab1)
    assert hub._order.accounts() == 1, "alice still has a tab"
    await hub.unregister(tab2)
    assert hub._order.accounts() == 0


async def test_live_messages_held_during_a_resume_come_after_it_without_duplicates(hub):
    resuming = await live(hub, session("s1", "alice", ["g1"]))
    other = await live(hub, session("s2", "bob", ["g1"]))
    hub.fanout.hold_session(resuming)
    for seq in (5, 6, 7):
        hub.deliver([("g1", broker_pb2.Delivery(
            group_id="g1", seq=seq, ts_ms=1, text=f"m{seq}", sender=broker_pb2.Person(id="x")).SerializeToString())])
    assert resuming.transport.frames == [], "held while resuming"
    assert [f["seq"] for f in other.transport.frames] == [5, 6, 7], "others are not held"
    hub.fanout.release_session(resuming, {"g1": 6})  # the replay already sent up to 6
    assert [f["seq"] for f in resuming.transport.frames] == [7]
    hub.fanout.release_session(resuming, {})  # releasing twice sends nothing more
    assert [f["seq"] for f in resuming.transport.frames] == [7]
