"""The broker core driven as its ZeroMQ driver drives it, in the product's words: requests in,
replies and publications out. Shared by tests/broker's core tests."""

from __future__ import annotations

import itertools

from chorus.broker.core import BrokerCore, Publish, Reply
from chorus.wire.pb import broker_pb2

GW = b"gw-1"
_change_ids = itertools.count(1)


def next_change_id() -> int:
    """A number above every one given out before, as the membership database numbers changes."""
    return next(_change_ids)


def joined_groups(groups: dict[str, list[str]]) -> list[broker_pb2.GroupChanges]:
    """Snapshot entries saying each account is in its groups (each a freshly numbered join)."""
    return [broker_pb2.GroupChanges(group_id=g, changes=[
        broker_pb2.LastChange(account_id=a, joined=True, change_id=next_change_id()) for a in accounts])
        for g, accounts in groups.items()]


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def make_core(store, clock=None, *, memberships_loaded=True, **overrides):
    """A core a gateway has said Hello to; with its membership table loaded (an empty snapshot
    from the membership service) unless ``memberships_loaded`` is False."""
    c = BrokerCore(broker_id="b_test", store=store, gateway_timeout_secs=10, max_text_chars=20,
                   wall_clock_ms=lambda: 1_700_000_000_000, monotonic=clock or Clock(), **overrides)
    hello(c)
    if memberships_loaded:
        snapshot(c, {})
    return c


def snapshot(core, groups: dict[str, list[str]], *, snapshot_id=1, first=True, last=True, identity=GW):
    """One page of a membership snapshot, as the membership service's notifier sends it."""
    return request(core, identity, membership_snapshot=broker_pb2.MembershipSnapshot(
        snapshot_id=snapshot_id, first=first, last=last, groups=joined_groups(groups)))


def change(core, account, group, joined=True, identity=GW, change_id=None):
    """A committed membership change, as the membership service's notifier sends it (numbered
    after every earlier one unless ``change_id`` says otherwise)."""
    return request(core, identity, membership_change=broker_pb2.MembershipChange(
        account_id=account, group=broker_pb2.GroupRef(id=group, name=group.title()), joined=joined,
        change_id=change_id or next_change_id()))


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
    """The account joins ``groups`` (as the membership service tells the broker), then a
    gateway registers a session for it."""
    for group in groups:
        change(core, account, group, identity=identity)
    person = broker_pb2.Person(id=account, username=account, display_name=account.title())
    return request(core, identity, open_session=broker_pb2.OpenSession(
        session_id=session_id, account=person, group_ids=groups))


def post(core, session_id, group, text, request_id=7):
    """Post and flush, as one poll round of the driver would: refusal, or publication and ack."""
    out = request(core, request_id=request_id, post=broker_pb2.Post(
        session_id=session_id, group_id=group, text=text))
    return out + core.flush()


def accept(core, session_id, group, text, request_id):
    """Hand a Post to the core without flushing; an accepted post is answered only at flush."""
    return request(core, request_id=request_id, post=broker_pb2.Post(
        session_id=session_id, group_id=group, text=text))


def acks_of(outputs) -> dict[int, broker_pb2.BrokerReply]:
    replies = [broker_pb2.BrokerReply.FromString(o.payload) for o in outputs if isinstance(o, Reply)]
    return {r.request_id: r for r in replies}


def deliveries_of(outputs) -> list[broker_pb2.Delivery]:
    return [broker_pb2.Delivery.FromString(o.payload) for o in outputs if isinstance(o, Publish)]
