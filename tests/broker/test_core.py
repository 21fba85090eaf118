"""The broker's decisions without sockets: envelopes in, replies and publications out."""

import pytest

from chorus.broker.core import BrokerCore, Publish, Reply
from chorus.broker.topics import CONTROL_TOPIC, barrier_topic, group_topic
from chorus.pb import broker_pb2

GW = b"gw-1"


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def core(clock):
    c = BrokerCore(broker_id="b_test", gateway_timeout_secs=10, max_text_chars=20,
                   wall_clock_ms=lambda: 1_700_000_000_000, monotonic=clock)
    hello(c)
    return c


def request(core, identity=GW, request_id=1, **kind):
    payload = broker_pb2.GatewayRequest(request_id=request_id, **kind).SerializeToString()
    return core.handle_request(identity, payload)


def reply_of(outputs, identity=GW) -> broker_pb2.BrokerReply:
    replies = [o for o in outputs if isinstance(o, Reply)]
    assert len(replies) == 1 and replies[0].identity == identity
    return broker_pb2.BrokerReply.FromString(replies[0].payload)


def hello(core, identity=GW):
    return reply_of(request(core, identity, hello=broker_pb2.Hello(gateway_id="gw")), identity)


def open_session(core, session_id, account, groups, identity=GW):
    person = broker_pb2.Person(id=account, username=account, display_name=account.title())
    return request(core, identity, open_session=broker_pb2.OpenSession(
        session_id=session_id, account=person, group_ids=groups))


def post(core, session_id, group, text, request_id=7):
    return request(core, request_id=request_id, post=broker_pb2.Post(
        session_id=session_id, group_id=group, text=text))


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


@pytest.mark.parametrize("text, why", [("   ", "blank"), ("x" * 21, "over 20")])
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
        account_id="alice", group=broker_pb2.GroupRef(id="g2", name="Two"), joined=True))
    [event] = [o for o in out if isinstance(o, Publish)]
    assert event.topic == CONTROL_TOPIC
    assert broker_pb2.MembershipEvent.FromString(event.payload).group.name == "Two"
    assert reply_of(post(core, "s1", "g2", "now I can")).posted.seq == 1
    request(core, membership_change=broker_pb2.MembershipChange(
        account_id="alice", group=broker_pb2.GroupRef(id="g2", name="Two"), joined=False))
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
