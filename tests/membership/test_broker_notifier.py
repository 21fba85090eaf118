"""Membership changes made by another backend reach the broker: the real membership gRPC server
(SQLite file) with its BrokerNotifier, the real broker (BrokerCore + BrokerServer on tcp
loopback, random ports), and a SUB socket watching the broker's control topic as every
gateway does. Calls go through the generated stub, as any backend's would."""

from __future__ import annotations

import logging
import socket
import threading
import time
from contextlib import contextmanager

import grpc
import pytest
import zmq

from chorus.broker.core import BrokerCore
from chorus.broker.server import BrokerServer
from chorus.broker.storage import MessageStore
from chorus.broker.storage import migrate as migrate_broker
from chorus.wire.topics import CONTROL_TOPIC
from chorus.common.db import create_db_engine, sqlite_url
from chorus.membership.broker_notifier import BrokerNotifier, NullNotifier, _outcome, _Outcome
from chorus.membership.config import Settings
from chorus.membership.server import create_server
from chorus.membership.servicer import MembershipServicer
from chorus.membership.storage import MembershipStore, migrate
from chorus.wire.conversation import Conversation
from chorus.wire.pb import broker_pb2
from chorus.wire.pb import membership_pb2 as pb
from chorus.wire.pb import membership_pb2_grpc as pb_grpc

ANNOUNCED_WITHIN_SECS = 1.0  # the promise
BROKER_COMES_UP_WITHIN_SECS = 5.0  # bounded wait once a missing broker appears
RPC_TIMEOUT_SECS = 5
QUICK_RPC_SECS = 0.5  # an RPC must not wait for the broker


class Broker:
    """The real broker on real sockets, in a thread. ``watch()`` before ``start()``."""

    def __init__(self, tmp_path, name: str, router: str = "tcp://127.0.0.1:0") -> None:
        self._engine = create_db_engine(sqlite_url(tmp_path, name))  # messages; no change touches it
        migrate_broker(self._engine)
        self.context = zmq.Context()
        core = BrokerCore(broker_id=name, store=MessageStore(self._engine), gateway_timeout_secs=30,
                          max_text_chars=4000)
        self.server = BrokerServer(core, router_endpoint=router, pub_endpoint="tcp://127.0.0.1:0",
                                   pub_hwm_msgs=1000, tick_secs=0.05, context=self.context)
        self.router, self.pub = self.server.bind()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def watch(self) -> ControlTopic:
        """A gateway's view of membership events, subscribed before the broker loop runs.

        The broker's XPUB is read here (safe: its thread has not started) until our
        subscription is in, so no event the broker publishes later can miss us.
        """
        assert self._thread is None, "watch() before start()"
        watcher = ControlTopic(self.pub)
        assert self.server.xpub.poll(5000), "the subscription never reached the broker"
        assert self.server.xpub.recv() == b"\x01" + CONTROL_TOPIC
        return watcher

    def start(self) -> Broker:
        self._thread = threading.Thread(target=self.server.run, args=(self._stop.is_set,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        self.server.close()
        self.context.destroy(linger=0)
        self._engine.dispose()


class ControlTopic:
    """A SUB socket on the broker's control topic, with its own context like a separate gateway."""

    def __init__(self, pub: str) -> None:
        self._context = zmq.Context()
        self._sub = self._context.socket(zmq.SUB)
        self._sub.subscribe(CONTROL_TOPIC)
        self._sub.connect(pub)

    def next_event(self, within_secs: float) -> broker_pb2.MembershipEvent | None:
        if not self._sub.poll(int(within_secs * 1000)):
            return None
        topic, payload = self._sub.recv_multipart()
        assert topic == CONTROL_TOPIC
        return broker_pb2.MembershipEvent.FromString(payload)

    def close(self) -> None:
        self._sub.close(linger=0)
        self._context.term()


def assert_announced(events: ControlTopic, account: str, group: pb.Group, *, joined: bool,
                     within_secs: float = ANNOUNCED_WITHIN_SECS) -> None:
    """The next membership event the broker published says ``account`` joined/left ``group``,
    and it came within ``within_secs``."""
    event = events.next_event(within_secs)
    assert event is not None, f"no event within {within_secs}s for {account} {'join' if joined else 'leave'}"
    assert (event.account_id, event.group.id, event.group.name, event.joined) == (
        account, group.id, group.name, joined)


def assert_nothing_announced(events: ControlTopic, wait_secs: float = 0.3) -> None:
    event = events.next_event(wait_secs)
    assert event is None, f"unexpected membership event: {event}"


def assert_confirmed(notifier: BrokerNotifier, within_secs: float = ANNOUNCED_WITHIN_SECS) -> None:
    """The broker confirms every queued change soon (its Done follows the publication)."""
    deadline = time.monotonic() + within_secs
    while notifier.pending() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert notifier.pending() == 0


@contextmanager
def membership_service(tmp_path, notifier: BrokerNotifier, accounts):
    """The real membership gRPC server on a free port, announcing through ``notifier``."""
    url = sqlite_url(tmp_path, "membership")
    engine = create_db_engine(url)
    migrate(engine)
    server, port = create_server("127.0.0.1:0", MembershipStore(engine),
                                 Settings(database_url=url, max_workers=8), notifier=notifier, accounts=accounts)
    notifier.start()
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield pb_grpc.MembershipStub(channel)
    finally:
        server.stop(None)
        notifier.close(1.0)
        engine.dispose()


@pytest.fixture
def broker(tmp_path):
    brokers: list[Broker] = []

    def make(name: str = "b1", router: str = "tcp://127.0.0.1:0") -> Broker:
        brokers.append(Broker(tmp_path, name, router))
        return brokers[-1]

    yield make
    for made in brokers:
        made.stop()


@pytest.fixture
def watchers():
    made: list[ControlTopic] = []
    yield made
    for watcher in made:
        watcher.close()


@pytest.fixture
def watched_broker(broker, watchers):
    """A started broker and a watcher of its control topic (what the gateways hear)."""
    running = broker()
    events = running.watch()
    watchers.append(events)
    running.start()
    return running, events


def create(stub, name: str, owner: str) -> pb.Group:
    return stub.CreateGroup(pb.CreateGroupRequest(owner_id=owner, name=name), timeout=RPC_TIMEOUT_SECS).group


def join(stub, group: pb.Group, account: str) -> pb.JoinGroupResponse:
    return stub.JoinGroup(pb.JoinGroupRequest(group_id=group.id, account_id=account), timeout=RPC_TIMEOUT_SECS)


def leave(stub, group: pb.Group, account: str) -> pb.LeaveGroupResponse:
    return stub.LeaveGroup(pb.LeaveGroupRequest(group_id=group.id, account_id=account), timeout=RPC_TIMEOUT_SECS)


def unused_router_endpoint() -> str:
    """A loopback endpoint nothing listens on (yet)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{probe.getsockname()[1]}"


def test_create_join_and_leave_by_another_backend_reach_the_broker_within_a_second(tmp_path, watched_broker, accounts):
    running, events = watched_broker
    with membership_service(tmp_path, BrokerNotifier(running.router), accounts) as stub:
        general = create(stub, "General", owner="u_owner")
        assert_announced(events, "u_owner", general, joined=True)
        assert join(stub, general, "u_ann").changed
        assert_announced(events, "u_ann", general, joined=True)
        assert leave(stub, general, "u_ann").changed
        assert_announced(events, "u_ann", general, joined=False)
        assert_nothing_announced(events)


def test_changes_that_change_nothing_are_not_announced(tmp_path, watched_broker, accounts):
    running, events = watched_broker
    with membership_service(tmp_path, BrokerNotifier(running.router), accounts) as stub:
        general = create(stub, "General", owner="u_owner")
        assert_announced(events, "u_owner", general, joined=True)
        assert not join(stub, general, "u_owner").changed
        assert not leave(stub, general, "u_stranger").changed
        assert join(stub, general, "u_bob").changed  # the next event must be this one
        assert_announced(events, "u_bob", general, joined=True)
        assert_nothing_announced(events)


def test_each_accounts_changes_arrive_in_the_order_they_were_committed(tmp_path, watched_broker, accounts):
    running, events = watched_broker
    people = [f"u_{i}" for i in range(4)]
    rounds = 10
    with membership_service(tmp_path, BrokerNotifier(running.router), accounts) as stub:
        general = create(stub, "General", owner="u_owner")
        assert_announced(events, "u_owner", general, joined=True)

        def churn(account: str) -> None:  # one backend per account, all at once
            for _ in range(rounds):
                assert join(stub, general, account).changed
                assert leave(stub, general, account).changed

        threads = [threading.Thread(target=churn, args=(account,)) for account in people]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        seen: dict[str, list[bool]] = {account: [] for account in people}
        for _ in range(len(people) * rounds * 2):
            event = events.next_event(ANNOUNCED_WITHIN_SECS)
            assert event is not None
            seen[event.account_id].append(event.joined)
        assert seen == {account: [True, False] * rounds for account in people}
        assert_nothing_announced(events)


def test_with_the_broker_down_rpcs_succeed_at_once_and_changes_arrive_when_it_comes_up(tmp_path, broker,
                                                                                   watchers, accounts):
    endpoint = unused_router_endpoint()
    notifier = BrokerNotifier(endpoint, retry_pause_secs=0.1)
    with membership_service(tmp_path, notifier, accounts) as stub:
        started = time.monotonic()
        general = create(stub, "General", owner="u_owner")
        assert join(stub, general, "u_ann").changed
        assert time.monotonic() - started < 2 * QUICK_RPC_SECS
        assert notifier.pending() == 2  # kept for the broker, not lost

        late = broker("late", router=endpoint)
        events = late.watch()
        watchers.append(events)
        late.start()
        assert_announced(events, "u_owner", general, joined=True, within_secs=BROKER_COMES_UP_WITHIN_SECS)
        assert_announced(events, "u_ann", general, joined=True)
        assert_confirmed(notifier)
        assert_nothing_announced(events)


def test_a_stalled_broker_gets_each_change_once_when_it_recovers(tmp_path, broker, watchers, accounts):
    stalled = broker()  # bound, so connections succeed, but nothing is read until start()
    events = stalled.watch()
    watchers.append(events)
    notifier = BrokerNotifier(stalled.router, reply_timeout_secs=0.2, retry_pause_secs=0.05)
    with membership_service(tmp_path, notifier, accounts) as stub:
        general = create(stub, "General", owner="u_owner")
        time.sleep(1.0)  # several attempts time out meanwhile
        assert notifier.pending() == 1
        stalled.start()
        assert_announced(events, "u_owner", general, joined=True, within_secs=BROKER_COMES_UP_WITHIN_SECS)
        assert_nothing_announced(events, wait_secs=0.5)


def test_a_restarted_broker_hears_the_next_change(tmp_path, broker, watchers, accounts):
    first = broker("first")
    events = first.watch()
    watchers.append(events)
    first.start()
    notifier = BrokerNotifier(first.router, retry_pause_secs=0.1)
    with membership_service(tmp_path, notifier, accounts) as stub:
        general = create(stub, "General", owner="u_owner")
        assert_announced(events, "u_owner", general, joined=True)
        first.stop()
        second = broker("second", router=first.router)  # same endpoint, knows nothing of us
        events = second.watch()
        watchers.append(events)
        second.start()
        assert join(stub, general, "u_ann").changed
        assert_announced(events, "u_ann", general, joined=True, within_secs=BROKER_COMES_UP_WITHIN_SECS)


def test_close_logs_each_change_the_broker_never_confirmed(tmp_path, caplog, accounts):
    notifier = BrokerNotifier(unused_router_endpoint(), retry_pause_secs=0.05)
    with caplog.at_level(logging.ERROR, logger="chorus.membership.broker_notifier"):
        with membership_service(tmp_path, notifier, accounts) as stub:
            general = create(stub, "General", owner="u_owner")
            started = time.monotonic()
        assert time.monotonic() - started < 3  # close(1.0) gave up on time
    assert f"account u_owner joined group {general.id} ('General')" in caplog.text


def test_a_full_outbox_refuses_new_changes_loudly_and_the_rpc_still_succeeds(tmp_path, caplog, accounts):
    notifier = BrokerNotifier(unused_router_endpoint(), max_queued_changes=1)
    with (caplog.at_level(logging.ERROR, logger="chorus.membership.broker_notifier"),
          membership_service(tmp_path, notifier, accounts) as stub):
        general = create(stub, "General", owner="u_owner")
        assert join(stub, general, "u_ann").changed
        assert notifier.pending() == 1
        assert "outbox full (1 changes" in caplog.text
        assert f"account u_ann joined group {general.id}" in caplog.text


# without a broker ------------------------------------------------------------


class RecordingNotifier(NullNotifier):
    def __init__(self) -> None:
        self.changes: list[tuple[str, str, str, bool]] = []
        self.change_ids: list[int] = []

    def notify(self, account_id: str, group_id: str, group_name: str, joined: bool, *, change_id: int) -> None:
        self.changes.append((account_id, group_id, group_name, joined))
        self.change_ids.append(change_id)


class Context:
    """Enough of grpc.ServicerContext for a refused call."""

    def abort(self, code, details):
        raise grpc.RpcError(code, details)


def test_the_servicer_announces_only_committed_changes(tmp_path, accounts):
    engine = create_db_engine(sqlite_url(tmp_path, "membership"))
    migrate(engine)
    notifier = RecordingNotifier()
    servicer = MembershipServicer(MembershipStore(engine, max_members_per_group=2), accounts, notifier)
    group = servicer.CreateGroup(pb.CreateGroupRequest(owner_id="u_owner", name="General"), Context()).group
    servicer.JoinGroup(pb.JoinGroupRequest(group_id=group.id, account_id="u_ann"), Context())
    for refused in [
        lambda: servicer.JoinGroup(pb.JoinGroupRequest(group_id=group.id, account_id="u_bob"), Context()),  # full
        lambda: servicer.JoinGroup(pb.JoinGroupRequest(group_id="g_missing", account_id="u_bob"), Context()),
        lambda: servicer.CreateGroup(pb.CreateGroupRequest(owner_id="u_bob", name="general"), Context()),
    ]:
        with pytest.raises(grpc.RpcError):
            refused()
    servicer.LeaveGroup(pb.LeaveGroupRequest(group_id=group.id, account_id="u_ann"), Context())
    assert notifier.changes == [
        ("u_owner", group.id, "General", True),
        ("u_ann", group.id, "General", True),
        ("u_ann", group.id, "General", False),
    ]
    assert notifier.change_ids == sorted(set(notifier.change_ids)), "numbered in commit order"
    engine.dispose()


@pytest.mark.parametrize(
    ("reply", "outcome"),
    [
        (None, _Outcome.RETRY),
        (broker_pb2.BrokerReply(done=broker_pb2.Done()), _Outcome.DONE),
        (broker_pb2.BrokerReply(failure=broker_pb2.Failure(code=broker_pb2.Failure.BAD_REQUEST)), _Outcome.REFUSED),
        (broker_pb2.BrokerReply(failure=broker_pb2.Failure(code=broker_pb2.Failure.UNKNOWN_GATEWAY)),
         _Outcome.REHELLO),
        (broker_pb2.BrokerReply(failure=broker_pb2.Failure(code=broker_pb2.Failure.UNAVAILABLE)), _Outcome.RETRY),
        (broker_pb2.BrokerReply(welcome=broker_pb2.Welcome()), _Outcome.RETRY),
    ],
)
def test_what_each_broker_answer_means_for_the_change(reply, outcome):
    answer = None
    if reply is not None:  # the reply as the conversation hands it over, answering a pending change
        conversation = Conversation("test", timeout_secs=1)
        reply.request_id = conversation.request(0.0, membership_change=broker_pb2.MembershipChange()).request_id
        answer = conversation.receive(reply.SerializeToString())
    assert _outcome(answer) is outcome


def test_an_endpoint_zeromq_refuses_fails_at_start():
    with pytest.raises(zmq.ZMQError):
        BrokerNotifier("tcp://127.0.0.1:notaport").start()


def test_a_notifier_that_never_started_logs_what_it_was_given(caplog):
    notifier = BrokerNotifier(unused_router_endpoint())
    notifier.notify("u_ann", "g_1", "General", False, change_id=1)
    with caplog.at_level(logging.ERROR, logger="chorus.membership.broker_notifier"):
        notifier.close()
        notifier.notify("u_bob", "g_1", "General", True, change_id=2)
    assert "account u_ann left group g_1 ('General')" in caplog.text
    assert "closed; live sessions will not hear that account u_bob joined group g_1" in caplog.text


def _wait_until(condition, within_secs: float = BROKER_COMES_UP_WITHIN_SECS) -> None:
    deadline = time.monotonic() + within_secs
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert condition()


def test_a_broker_that_does_not_know_us_gets_every_membership_first(tmp_path, broker):
    """The broker decides posts by its own table; a new or restarted one gets it as a snapshot,
    in pages, from the notifier, and changes made while it was away are in it."""
    router = unused_router_endpoint()
    engine = create_db_engine(sqlite_url(tmp_path, "members"))
    migrate(engine)
    store = MembershipStore(engine)
    notifier = BrokerNotifier(router, snapshot_source=store.last_changes_page, snapshot_page_size=2,
                              retry_pause_secs=0.05)
    notifier.start()
    try:
        first, _ = store.create_group("u_ann", "First")
        second, _ = store.create_group("u_bob", "Second")
        for account in ("u_cid", "u_dee"):
            store.join(first.id, account)
        running = broker(router=router).start()  # came up after the memberships were made
        table = running.server.core.memberships
        _wait_until(lambda: table.complete)
        assert table.members_of(first.id) == {"u_ann", "u_cid", "u_dee"}
        assert table.members_of(second.id) == {"u_bob"}

        running.stop()
        store.leave(first.id, "u_dee")  # while no broker runs
        restarted = broker("b2", router=router).start()
        table = restarted.server.core.memberships
        _wait_until(lambda: table.complete)
        assert table.members_of(first.id) == {"u_ann", "u_cid"}
        assert table.members_of(second.id) == {"u_bob"}
    finally:
        notifier.close(1.0)
        engine.dispose()
