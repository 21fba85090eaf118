"""The gRPC Messages service end to end: the real broker loop on real ZeroMQ sockets and a
SQLite store, a real membership service on a free port, called through the generated stub."""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager

import grpc
import pytest
import zmq

from chorus.broker.core import BrokerCore
from chorus.broker.messages_service import (
    SERVICE_NAME, BrokerClient, MembershipGroups, MessagesServicer, create_server)
from chorus.broker.server import BrokerServer
from chorus.broker.storage import MessageStore, migrate
from chorus.wire.topics import barrier_topic, group_topic
from chorus.common.db import create_db_engine, sqlite_url
from chorus.membership import server as membership_server
from chorus.membership.accounts import AuthAccounts
from chorus.membership.config import Settings as MembershipSettings
from chorus.membership.storage import MembershipStore
from chorus.membership.storage import migrate as migrate_membership
from chorus.wire.pb import broker_pb2
from chorus.wire.pb import messages_pb2 as pb
from chorus.wire.pb import messages_pb2_grpc as pb_grpc
from conftest import free_port
from generic_grpc import assert_serving, method_without_stubs

TIMEOUT_SECS = 5


@pytest.fixture
def membership(tmp_path):
    """A real membership gRPC service; yields (address, store) so tests can create groups."""
    url = sqlite_url(tmp_path, "membership")
    engine = create_db_engine(url)
    migrate_membership(engine)
    store = MembershipStore(engine)
    # Groups are made in the store, so membership never asks auth about an account here: no auth runs.
    no_auth = grpc.insecure_channel(f"127.0.0.1:{free_port()}")
    server, port = membership_server.create_server(
        "127.0.0.1:0", store, MembershipSettings(database_url=url, max_workers=4),
        accounts=AuthAccounts(no_auth, timeout_secs=TIMEOUT_SECS))
    server.start()
    yield f"127.0.0.1:{port}", store
    server.stop(None)
    no_auth.close()
    engine.dispose()


@contextmanager
def running_broker(tmp_path, membership_address: str, gateway_timeout_secs: float = 30):
    """The broker loop in a thread plus its Messages service; yields (stub, pub endpoint, context)."""
    engine = create_db_engine(sqlite_url(tmp_path, "broker"))
    migrate(engine)
    context = zmq.Context()
    core = BrokerCore(broker_id="b_grpc", store=MessageStore(engine),
                      gateway_timeout_secs=gateway_timeout_secs,
                      max_text_chars=100, max_history_page=5)
    server = BrokerServer(core, router_endpoint="tcp://127.0.0.1:0", pub_endpoint="tcp://127.0.0.1:0",
                          pub_hwm_msgs=1000, tick_secs=0.05, context=context)
    router, pub = server.bind()
    client = BrokerClient(context, server.bind_internal("broker-under-test"), client_id="grpc", timeout_secs=5)
    channel = grpc.insecure_channel(membership_address)
    servicer = MessagesServicer(client, MembershipGroups(channel), timeout_secs=TIMEOUT_SECS)
    grpc_server, port = create_server("127.0.0.1:0", servicer, max_workers=8)
    grpc_server.start()
    stop = threading.Event()
    thread = threading.Thread(target=server.run, args=(stop.is_set,), daemon=True)
    thread.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as grpc_channel:
            yield grpc_channel, router, pub, context
    finally:
        grpc_server.stop(None)
        stop.set()
        thread.join(5)
        client.close()
        channel.close()
        server.close()
        context.destroy(linger=0)
        engine.dispose()


@pytest.fixture
def broker(tmp_path, membership):
    address, store = membership
    with running_broker(tmp_path, address) as (channel, router, pub, context):
        yield pb_grpc.MessagesStub(channel), channel, store, router, pub, context


class Listener:
    """A gateway's SUB for one group, with its subscription confirmed by the broker's barrier."""

    def __init__(self, context, router, pub, group_id):
        self.sub = context.socket(zmq.SUB)
        self.sub.connect(pub)
        self.sub.subscribe(group_topic(group_id))
        self.sub.subscribe(barrier_topic(b"listener"))
        dealer = context.socket(zmq.DEALER)
        dealer.connect(router)
        for i, kind in enumerate([{"hello": broker_pb2.Hello(gateway_id="l")},
                                  {"sync": broker_pb2.Sync(nonce=b"listener")}]):
            dealer.send(broker_pb2.GatewayRequest(request_id=i, **kind).SerializeToString())
            assert dealer.poll(TIMEOUT_SECS * 1000), "the broker did not answer"
            dealer.recv()
        dealer.close(linger=0)

    def deliveries(self, count) -> list[broker_pb2.Delivery]:
        got = []
        for _ in range(count):
            assert self.sub.poll(TIMEOUT_SECS * 1000), f"only {len(got)} of {count} deliveries arrived"
            got.append(broker_pb2.Delivery.FromString(self.sub.recv_multipart()[1]))
        return got


@contextmanager
def refused_with(code: grpc.StatusCode, details: str = ""):
    with pytest.raises(grpc.RpcError) as caught:
        yield
    assert caught.value.code() == code, caught.value.details()
    assert details in caught.value.details()


def post(stub, group_id, text, name="Billing"):
    return stub.PostMessage(pb.PostMessageRequest(group_id=group_id, sender_name=name, text=text),
                            timeout=TIMEOUT_SECS)


def test_a_backend_post_is_delivered_on_the_group_topic_and_listed(broker):
    stub, _, groups, router, pub, context = broker
    group, _ = groups.create_group("u_owner", "Accounts")
    listener = Listener(context, router, pub, group.id)
    posted = post(stub, group.id, "invoice 42 paid")
    assert (posted.group_id, posted.seq) == (group.id, 1) and posted.ts_ms > 0
    [delivery] = listener.deliveries(1)
    assert (delivery.seq, delivery.text) == (1, "invoice 42 paid")
    assert (delivery.sender.id, delivery.sender.username, delivery.sender.display_name) == (
        "system", "Billing", "Billing")
    listed = stub.ListMessages(pb.ListMessagesRequest(group_id=group.id), timeout=TIMEOUT_SECS)
    assert [(m.seq, m.text, m.sender_id, m.sender_display_name) for m in listed.messages] == [
        (1, "invoice 42 paid", "system", "Billing")]
    assert not listed.more


def test_list_messages_pages_both_ways_capped_by_the_broker(broker):
    stub, _, groups, *_ = broker
    group, _ = groups.create_group("u_owner", "Paging")
    for i in range(1, 9):
        assert post(stub, group.id, f"m{i}").seq == i

    def listed(**kwargs):
        reply = stub.ListMessages(pb.ListMessagesRequest(group_id=group.id, **kwargs), timeout=TIMEOUT_SECS)
        return [m.seq for m in reply.messages], reply.more

    assert listed(limit=100) == ([8, 7, 6, 5, 4], True), "capped at max_history_page (5 here)"
    assert listed(before_seq=4, limit=2) == ([3, 2], True)
    assert listed(after_seq=6) == ([7, 8], False)
    with refused_with(grpc.StatusCode.INVALID_ARGUMENT, "not both"):
        listed(before_seq=4, after_seq=2)


def test_unknown_group_is_not_found_and_bad_input_is_invalid_argument(broker):
    stub, _, groups, *_ = broker
    with refused_with(grpc.StatusCode.NOT_FOUND, "g_nope"):
        post(stub, "g_nope", "hello")
    with refused_with(grpc.StatusCode.NOT_FOUND):
        stub.ListMessages(pb.ListMessagesRequest(group_id="g_nope"), timeout=TIMEOUT_SECS)
    group, _ = groups.create_group("u_owner", "Checks")
    with refused_with(grpc.StatusCode.INVALID_ARGUMENT, "blank"):
        post(stub, group.id, "   ")
    with refused_with(grpc.StatusCode.INVALID_ARGUMENT, "sender_name"):
        post(stub, group.id, "hi", name="")
    with refused_with(grpc.StatusCode.INVALID_ARGUMENT, "over 100"):
        post(stub, group.id, "x" * 101)
    assert post(stub, group.id, "fine").seq == 1, "refusals took no seq"


def test_concurrent_backend_posts_get_distinct_gap_free_seqs(broker):
    stub, _, groups, *_ = broker
    group, _ = groups.create_group("u_owner", "Busy")
    seqs, errors = [], []

    def worker(n):
        try:
            for i in range(10):
                seqs.append(post(stub, group.id, f"w{n}-{i}").seq)
        except grpc.RpcError as exc:
            errors.append(exc)
    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == [] and sorted(seqs) == list(range(1, 61))


def test_health_and_reflection(broker):
    _, channel, groups, *_ = broker
    assert_serving(channel, SERVICE_NAME)
    call, request_class = method_without_stubs(channel, SERVICE_NAME, "PostMessage")
    group, _ = groups.create_group("u_owner", "Generic")
    assert call(request_class(group_id=group.id, sender_name="Bot", text="via reflection"),
                timeout=TIMEOUT_SECS).seq == 1


def test_unreachable_membership_is_unavailable(tmp_path):
    with running_broker(tmp_path, f"127.0.0.1:{free_port()}") as (channel, *_):
        stub = pb_grpc.MessagesStub(channel)
        started = time.monotonic()
        with refused_with(grpc.StatusCode.UNAVAILABLE, "membership"):
            post(stub, "g_any", "hello")
        assert time.monotonic() - started < TIMEOUT_SECS + 2


def test_the_service_says_hello_again_after_the_broker_forgot_it(tmp_path, membership):
    address, groups = membership
    with running_broker(tmp_path, address, gateway_timeout_secs=0.2) as (channel, *_):
        stub = pb_grpc.MessagesStub(channel)
        group, _ = groups.create_group("u_owner", "Quiet")
        assert post(stub, group.id, "first").seq == 1
        time.sleep(0.5)  # silent past the timeout: the broker expires the service's DEALER
        assert post(stub, group.id, "after a pause").seq == 2


def test_a_backend_retrying_with_its_key_stores_the_message_once(broker):
    stub, _, groups, router, pub, context = broker
    group, _ = groups.create_group("u_owner", "Billing room")
    listener = Listener(context, router, pub, group.id)
    request = pb.PostMessageRequest(group_id=group.id, sender_name="Billing", text="invoice 7 paid",
                                    idempotency_key="invoice-7")
    first = stub.PostMessage(request, timeout=TIMEOUT_SECS)
    again = stub.PostMessage(request, timeout=TIMEOUT_SECS)
    assert (again.seq, again.ts_ms, again.repeat, first.repeat) == (first.seq, first.ts_ms, True, False)
    assert [d.seq for d in listener.deliveries(1)] == [first.seq]
    listed = stub.ListMessages(pb.ListMessagesRequest(group_id=group.id), timeout=TIMEOUT_SECS)
    assert [m.text for m in listed.messages] == ["invoice 7 paid"]
    with pytest.raises(grpc.RpcError) as caught:
        stub.PostMessage(pb.PostMessageRequest(group_id=group.id, sender_name="Billing", text="x",
                                               idempotency_key="k" * 65), timeout=TIMEOUT_SECS)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
