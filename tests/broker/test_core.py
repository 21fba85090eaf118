"""The broker's decisions without sockets or SQL: envelopes in, replies and publications out.

The store is tests/broker/conftest.py's in-memory FakeStore; test_core_store.py
runs the storage-facing behaviour against the real MessageStore.
"""

import pytest

from brokercore import (GW, next_change_id, Clock, accept, acks_of, deliveries_of, hello, make_core, open_session, post,
                        reply_of, request)
from chorus.broker.core import BrokerCore, Publish, Reply
from chorus.broker.errors import StoreUnavailable
from chorus.wire.topics import CONTROL_TOPIC, barrier_topic, group_topic
from chorus.wire.pb import broker_pb2

@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def core(clock, fake_store):
    return make_core(fake_store, clock)


def test_member_post_is_published_once_sequenced_and_acked(core):
    open_session(core, "s1", "alice", ["g1"])
    open_session(core, "s2", "bob", ["g1"])
    out = post(core, "s1", "g1", "hello")
    published = [o for o in out if isinstance(o, Publish)]
    assert len(published) == 1, "one publication however many members"
    assert published[0].topic == group_topic("g1")
    delivery = broker_pb2.Delivery.FromString(published[0].payload)
    assert (delivery.group_id, delivery.seq, delivery.text) == ("g1", 1, "hello")
    assert delivery.sender.display_name == "Alice"
    ack = reply_of(out)
    assert ack.request_id == 7
    assert (ack.posted.seq, ack.posted.ts_ms) == (1, 1_700_000_000_000)


def test_sequence_numbers_increase_per_group(core):
    open_session(core, "s1", "alice", ["g1", "g2"])
    seqs = [reply_of(post(core, "s1", g, "x")).posted.seq for g in ["g1", "g1", "g2", "g1"]]
    assert seqs == [1, 2, 1, 3]


def test_non_member_post_is_refused_and_not_published(core):
    open_session(core, "s1", "mallory", ["g2"])
    out = post(core, "s1", "g1", "let me in")
    assert not any(isinstance(o, Publish) for o in out)
    assert reply_of(out).failure.code == broker_pb2.Failure.NOT_MEMBER


@pytest.mark.parametrize("text, why", [("   ", "blank"), ("\u200b\u2060\u3164", "blank"), ("x" * 21, "over 20"),
                                       ("a\u0000b", "U+0000"), ("\x1b[2J", "U+001B")])
def test_bad_text_is_refused(core, text, why):
    open_session(core, "s1", "alice", ["g1"])
    failure = reply_of(post(core, "s1", "g1", text)).failure
    assert failure.code == broker_pb2.Failure.BAD_REQUEST and why in failure.message


def test_unknown_session_and_unknown_gateway(core):
    assert reply_of(post(core, "nope", "g1", "hi")).failure.code == broker_pb2.Failure.UNKNOWN_SESSION
    out = request(core, b"stranger", close_session=broker_pb2.CloseSession(session_id="x"))
    assert reply_of(out, b"stranger").failure.code == broker_pb2.Failure.UNKNOWN_GATEWAY


def test_garbage_envelopes_get_a_failure_and_the_broker_keeps_serving(core):
    for payload in [b"\xff\xff\xff", b"", broker_pb2.GatewayRequest(request_id=3).SerializeToString()]:
        failure = reply_of(core.handle_request(GW, payload)).failure
        assert failure.code == broker_pb2.Failure.BAD_REQUEST
    failure = reply_of(open_session(core, "", "alice", ["g1"])).failure
    assert failure.code == broker_pb2.Failure.BAD_REQUEST and "session_id" in failure.message
    open_session(core, "s1", "alice", ["g1"])
    assert reply_of(post(core, "s1", "g1", "still here")).posted.seq == 1


def test_membership_change_updates_routing_and_tells_every_gateway(core):
    open_session(core, "s1", "alice", ["g1"])
    out = request(core, membership_change=broker_pb2.MembershipChange(
        account_id="alice", group=broker_pb2.GroupRef(id="g2", name="Two"), joined=True, change_id=next_change_id()))
    [event] = [o for o in out if isinstance(o, Publish)]
    assert event.topic == CONTROL_TOPIC
    assert broker_pb2.MembershipEvent.FromString(event.payload).group.name == "Two"
    assert reply_of(post(core, "s1", "g2", "now I can")).posted.seq == 1
    request(core, membership_change=broker_pb2.MembershipChange(
        account_id="alice", group=broker_pb2.GroupRef(id="g2", name="Two"), joined=False, change_id=next_change_id()))
    assert reply_of(post(core, "s1", "g2", "gone")).failure.code == broker_pb2.Failure.NOT_MEMBER


def test_silent_gateway_is_expired_and_its_sessions_dropped(core, clock):
    open_session(core, "s1", "alice", ["g1"])
    clock.now += 11
    core.tick()
    assert core.routing.members_of("g1") == frozenset()
    assert hello(core).welcome.fresh is True, "the gateway learns it must register again"


def test_hello_says_fresh_only_on_first_contact(core):
    assert hello(core).welcome.fresh is False
    assert hello(core, b"gw-2").welcome.fresh is True


def test_sync_is_answered_when_the_marker_subscription_arrives(core):
    assert request(core, request_id=9, sync=broker_pb2.Sync(nonce=b"abc")) == []
    assert core.handle_subscription(b"\x01" + group_topic("g1")) == []
    assert reply_of(core.handle_subscription(b"\x01" + barrier_topic(b"abc"))).request_id == 9
    assert core.handle_subscription(b"\x00" + barrier_topic(b"abc")) == []
    assert core.handle_subscription(b"") == []


# group commit ------------------------------------------------------------------

def test_posts_wait_for_flush_and_a_round_is_one_transaction(core, fake_store):
    open_session(core, "s1", "alice", ["g1", "g2"])
    for i, group in enumerate(["g1", "g2", "g1"], start=1):
        assert accept(core, "s1", group, f"m{i}", request_id=i) == [], "nothing before it is stored"
    assert fake_store.batches == [] and core.pending_posts == 3
    out = core.flush()
    assert len(fake_store.batches) == 1 and len(fake_store.batches[0]) == 3, "one group commit"
    assert fake_store.last_seqs_calls == [["g1", "g2"]], "counters loaded in one query"
    assert [(d.group_id, d.seq, d.text) for d in deliveries_of(out)] == [
        ("g1", 1, "m1"), ("g2", 1, "m2"), ("g1", 2, "m3")]
    assert [type(o) for o in out] == [Publish, Reply] * 3, "each publication before its ack"
    assert {i: r.posted.seq for i, r in acks_of(out).items()} == {1: 1, 2: 1, 3: 2}
    assert core.flush() == [] and len(fake_store.batches) == 1, "an empty round writes nothing"


def test_failed_store_refuses_the_whole_batch_publishes_nothing_and_leaves_no_gap(core, fake_store):
    open_session(core, "s1", "alice", ["g1"])
    assert reply_of(post(core, "s1", "g1", "stored")).posted.seq == 1
    fake_store.failing = True
    accept(core, "s1", "g1", "lost a", request_id=10)
    accept(core, "s1", "g1", "lost b", request_id=11)
    out = core.flush()
    assert deliveries_of(out) == [], "nothing unstored is published"
    for reply in acks_of(out).values():
        assert reply.failure.code == broker_pb2.Failure.UNAVAILABLE
        assert reply.failure.message == "message not stored; try again"
    assert sorted(acks_of(out)) == [10, 11]
    fake_store.failing = False
    assert reply_of(post(core, "s1", "g1", "again")).posted.seq == 2, "no gap after the failure"
    assert fake_store.seqs_of("g1") == [1, 2]


def test_an_unexpected_store_error_fails_its_batch_and_the_next_round_goes_on(core, fake_store, caplog):
    """A driver error nobody foresaw (PostgreSQL's DataError for a NUL once ended the broker
    loop) is a failed batch like any outage: UNAVAILABLE, nothing published, no gap after."""
    open_session(core, "s1", "alice", ["g1"])
    real_append = fake_store.append_batch

    def explode(messages, keys=(), fence=None):
        raise RuntimeError("value cannot contain NUL (0x00) bytes")
    fake_store.append_batch = explode
    accept(core, "s1", "g1", "one", request_id=10)
    accept(core, "s1", "g1", "two", request_id=11)
    out = core.flush()
    assert deliveries_of(out) == []
    assert {i: r.failure.code for i, r in acks_of(out).items()} == {
        10: broker_pb2.Failure.UNAVAILABLE, 11: broker_pb2.Failure.UNAVAILABLE}
    assert "failed unexpectedly" in caplog.text
    fake_store.append_batch = real_append
    assert reply_of(post(core, "s1", "g1", "three")).posted.seq == 1


def test_counters_are_reloaded_after_a_failure_whose_commit_landed(core, fake_store):
    """The ambiguous failure: the driver raised, but the rows were committed."""
    open_session(core, "s1", "alice", ["g1"])
    post(core, "s1", "g1", "one")
    real_append = fake_store.append_batch

    def append_then_fail(messages, keys=(), fence=None):
        real_append(messages, keys, fence)
        raise StoreUnavailable("connection lost after commit")
    fake_store.append_batch = append_then_fail
    assert reply_of(post(core, "s1", "g1", "two")).failure.code == broker_pb2.Failure.UNAVAILABLE
    fake_store.append_batch = real_append
    assert reply_of(post(core, "s1", "g1", "three")).posted.seq == 3, "continues after what landed"
    assert fake_store.seqs_of("g1") == [1, 2, 3]


def test_seqs_continue_from_the_store_after_a_restart(fake_store):
    first = make_core(fake_store)
    open_session(first, "s1", "alice", ["g1", "g2"])
    for group in ["g1", "g1", "g2"]:
        post(first, "s1", group, "before")
    restarted = make_core(fake_store)  # a new process: empty memory, same database
    open_session(restarted, "s1", "alice", ["g1", "g2", "g3"])
    seqs = [reply_of(post(restarted, "s1", g, "after")).posted.seq for g in ["g1", "g2", "g3", "g1"]]
    assert seqs == [3, 2, 1, 4]
    loads_before_restart = 2  # g1, then g2, each the first time it was posted to
    assert fake_store.last_seqs_calls[loads_before_restart:] == [["g1"], ["g2"], ["g3"]], \
        "each group loaded lazily, once per process"


def test_membership_change_publishes_earlier_posts_before_its_event(core):
    open_session(core, "s1", "alice", ["g1"])
    accept(core, "s1", "g1", "before leaving", request_id=5)
    out = request(core, request_id=6, membership_change=broker_pb2.MembershipChange(
        account_id="alice", group=broker_pb2.GroupRef(id="g1", name="One"), joined=False,
        change_id=next_change_id()))
    topics = [o.topic for o in out if isinstance(o, Publish)]
    assert topics == [group_topic("g1"), CONTROL_TOPIC]
    assert acks_of(out)[5].posted.seq == 1 and acks_of(out)[6].WhichOneof("kind") == "done"


# system posts -------------------------------------------------------------------

def system_post(core, group, name, text, request_id=3):
    out = request(core, request_id=request_id, system_post=broker_pb2.SystemPost(
        group_id=group, sender_name=name, text=text))
    return out + core.flush()


def test_system_post_needs_no_membership_and_is_sequenced_like_any_message(core):
    open_session(core, "s1", "alice", ["g1"])
    post(core, "s1", "g1", "hi")
    out = system_post(core, "g1", "Billing", "invoice paid")
    [delivery] = deliveries_of(out)
    assert delivery.seq == 2 and delivery.text == "invoice paid"
    assert (delivery.sender.id, delivery.sender.username, delivery.sender.display_name) == (
        "system", "Billing", "Billing")
    assert reply_of(out).posted.seq == 2


@pytest.mark.parametrize("name, text, why", [
    ("", "hi", "sender_name"), ("x" * 65, "hi", "sender_name"), ("bad\nname", "hi", "sender_name"),
    ("Bot", "  ", "blank"), ("Bot", "\u200b", "blank"), ("Bot", "y" * 21, "over 20")])
def test_bad_system_posts_are_refused(core, fake_store, name, text, why):
    failure = reply_of(system_post(core, "g1", name, text)).failure
    assert failure.code == broker_pb2.Failure.BAD_REQUEST and why in failure.message
    assert fake_store.messages == {}


# history, states, read markers, online -----------------------------------------------

def history(core, group, before=0, after=None, limit=0):
    """after=None leaves after_seq unset (page backwards); any number, 0 too, pages forward."""
    envelope = broker_pb2.History(group_id=group, before_seq=before, limit=limit)
    if after is not None:
        envelope.after_seq = after
    return reply_of(request(core, request_id=4, history=envelope))


def test_history_pages_back_and_forward_with_more(fake_store):
    core = make_core(fake_store, max_history_page=4)
    for i in range(1, 11):
        system_post(core, "g1", "Bot", f"m{i}")
    latest = history(core, "g1", limit=3).messages
    assert [m.seq for m in latest.messages] == [10, 9, 8] and latest.more
    older = history(core, "g1", before=3).messages
    assert [m.seq for m in older.messages] == [2, 1] and not older.more
    capped = history(core, "g1", limit=50).messages
    assert [m.seq for m in capped.messages] == [10, 9, 8, 7] and capped.more, "capped, says more"
    resumed = history(core, "g1", after=7).messages
    assert [m.seq for m in resumed.messages] == [8, 9, 10] and not resumed.more
    from_start = history(core, "g1", after=0, limit=2).messages
    assert [m.seq for m in from_start.messages] == [1, 2] and from_start.more, "after 0 is the beginning"
    assert resumed.messages[0].sender.username == "Bot"
    both = history(core, "g1", before=5, after=2)
    assert both.failure.code == broker_pb2.Failure.BAD_REQUEST


def test_group_states_and_mark_read_never_backwards_nor_past_the_last_seq(core):
    for _ in range(3):
        system_post(core, "g1", "Bot", "x")

    def states():
        out = request(core, request_id=8, group_states=broker_pb2.GroupStates(
            account_id="alice", group_ids=["g1", "g2"]))
        return {s.group_id: (s.last_seq, s.read_seq) for s in reply_of(out).states.groups}

    def mark(group, seq):
        return reply_of(request(core, request_id=9, mark_read=broker_pb2.MarkRead(
            account_id="alice", group_id=group, seq=seq)))

    assert states() == {"g1": (3, 0), "g2": (0, 0)}
    [answer] = mark("g1", 2).states.groups
    assert (answer.group_id, answer.last_seq, answer.read_seq) == ("g1", 3, 2), "the state after the update"
    mark("g1", 1)
    assert states()["g1"] == (3, 2), "a read marker never moves backwards"
    mark("g1", 99)
    assert states()["g1"] == (3, 3), "capped at the group's last seq"
    assert mark("", 1).failure.code == broker_pb2.Failure.BAD_REQUEST
    failure = reply_of(request(core, mark_read=broker_pb2.MarkRead(group_id="g1", seq=1))).failure
    assert failure.code == broker_pb2.Failure.BAD_REQUEST and "account_id" in failure.message


def test_reads_answer_unavailable_when_the_store_is_down(core, fake_store):
    fake_store.failing = True
    assert history(core, "g1").failure.code == broker_pb2.Failure.UNAVAILABLE
    out = request(core, group_states=broker_pb2.GroupStates(account_id="a", group_ids=["g1"]))
    assert reply_of(out).failure.code == broker_pb2.Failure.UNAVAILABLE


def test_online_lists_the_members_with_a_live_session(core):
    open_session(core, "s1", "bob", ["g1"])
    open_session(core, "s2", "alice", ["g1", "g2"])
    online = reply_of(request(core, online=broker_pb2.Online(group_id="g1"))).online_members
    assert list(online.account_ids) == ["alice", "bob"]
    request(core, close_session=broker_pb2.CloseSession(session_id="s1"))
    online = reply_of(request(core, online=broker_pb2.Online(group_id="g1"))).online_members
    assert list(online.account_ids) == ["alice"]
