"""ZeroMQ traffic to the broker is authenticated and encrypted: without the right key nothing
can be read or written, and each key may only do what its role may.

In-process tests drive the real BrokerServer on real sockets with keys made by
`chorus keys`; the last test does the same against the running stack of
processes (`services`), as a local attacker would.
"""

from __future__ import annotations

import threading
import time

import aiohttp
import pytest
import zmq

from chat import Api, Person
from chorus.broker.core import BrokerCore
from chorus.broker.server import BrokerServer
from chorus.broker.storage import MessageStore, migrate
from chorus.common.curve import ClientCurve, ServerCurve
from chorus.common.db import create_db_engine, sqlite_url
from chorus.common.keys import ensure_keys
from chorus.wire.pb import broker_pb2
from chorus.wire.topics import group_topic

REFUSED_WITHIN_MS = 700  # a refused connection never answers; this is how long we listen
Code = broker_pb2.Failure.Code


@pytest.fixture
def keys(tmp_path):
    return ensure_keys(tmp_path / "keys")


@pytest.fixture
def broker(tmp_path, keys):
    engine = create_db_engine(sqlite_url(tmp_path, "broker"))
    migrate(engine)
    context = zmq.Context()
    core = BrokerCore(broker_id="b", store=MessageStore(engine), gateway_timeout_secs=30, max_text_chars=100)
    server = BrokerServer(core, router_endpoint="tcp://127.0.0.1:0", pub_endpoint="tcp://127.0.0.1:0",
                          pub_hwm_msgs=100, tick_secs=0.05, curve=ServerCurve.load(keys / "broker"),
                          context=context)
    router, pub = server.bind()
    internal = server.bind_internal("keys-test")
    stop = threading.Event()
    thread = threading.Thread(target=server.run, args=(stop.is_set,), daemon=True)
    thread.start()
    yield context, router, pub, internal
    stop.set()
    thread.join(5)
    server.close()
    context.destroy(linger=0)
    engine.dispose()


class Client:
    """A DEALER with some key (or none), speaking GatewayRequests."""

    def __init__(self, context, endpoint: str, curve: ClientCurve | None, name: str):
        self.socket = context.socket(zmq.DEALER)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.setsockopt(zmq.ROUTING_ID, name.encode())
        if curve is not None:
            curve.apply(self.socket)
        self.socket.connect(endpoint)
        self.next_id = 0

    def ask(self, within_ms: int = 3000, **kind) -> broker_pb2.BrokerReply | None:
        self.next_id += 1
        self.socket.send(broker_pb2.GatewayRequest(request_id=self.next_id, **kind).SerializeToString())
        if not self.socket.poll(within_ms):
            return None
        return broker_pb2.BrokerReply.FromString(self.socket.recv())

    def close(self):
        self.socket.close(linger=0)


def stranger(keys) -> ClientCurve:
    """A well-formed key pair the broker was never told about (and the broker's real public key)."""
    public, secret = zmq.curve_keypair()
    return ClientCurve(public, secret, ClientCurve.load(keys / "gateway").server_public)


def hello(name: str) -> dict:
    return {"hello": broker_pb2.Hello(gateway_id=name)}


def test_the_router_answers_nobody_without_a_known_key(broker, keys):
    context, router, _, _ = broker
    for curve in (None, stranger(keys)):
        client = Client(context, router, curve, "intruder")
        try:
            assert client.ask(REFUSED_WITHIN_MS, **hello("intruder")) is None
        finally:
            client.close()
    welcome = Client(context, router, ClientCurve.load(keys / "gateway"), "gw")
    try:
        assert welcome.ask(**hello("gw")).WhichOneof("kind") == "welcome"
    finally:
        welcome.close()


def test_each_key_may_only_ask_what_its_role_may(broker, keys):
    context, router, _, internal = broker
    gateway = Client(context, router, ClientCurve.load(keys / "gateway"), "gw")
    membership = Client(context, router, ClientCurve.load(keys / "membership"), "members")
    in_process = Client(context, internal, None, "messages")
    change = broker_pb2.MembershipChange(account_id="mallory", group=broker_pb2.GroupRef(id="g1"), joined=True,
                                         change_id=1)
    snapshot = broker_pb2.MembershipSnapshot(snapshot_id=1, first=True, last=True)
    person = broker_pb2.Person(id="mallory", username="mallory", display_name="Mallory")
    try:
        for client in (gateway, membership, in_process):
            assert client.ask(**hello("x")).WhichOneof("kind") == "welcome"
        # a gateway cannot put anyone into a group, nor replace the table
        for kind in ({"membership_change": change}, {"membership_snapshot": snapshot},
                     {"system_post": broker_pb2.SystemPost(group_id="g1", sender_name="Bot", text="hi")}):
            assert gateway.ask(**kind).failure.code == Code.FORBIDDEN, kind
        # the membership service cannot register sessions, post or read
        for kind in ({"open_session": broker_pb2.OpenSession(session_id="s", account=person, group_ids=["g1"])},
                     {"post": broker_pb2.Post(session_id="s", group_id="g1", text="hi")},
                     {"history": broker_pb2.History(group_id="g1")}):
            assert membership.ask(**kind).failure.code == Code.FORBIDDEN, kind
        assert membership.ask(membership_snapshot=snapshot).WhichOneof("kind") == "done"
        assert membership.ask(membership_change=change).WhichOneof("kind") == "done"
        # the in-process Messages service posts as a backend but cannot pose as a gateway
        assert in_process.ask(system_post=broker_pb2.SystemPost(
            group_id="g1", sender_name="Bot", text="hi")).WhichOneof("kind") == "posted"
        assert in_process.ask(open_session=broker_pb2.OpenSession(
            session_id="s", account=person, group_ids=["g1"])).failure.code == Code.FORBIDDEN
    finally:
        for client in (gateway, membership, in_process):
            client.close()


def test_the_pub_socket_streams_nothing_to_a_sniffer(broker, keys):
    context, router, pub, internal = broker
    subscribers = {}
    for name, curve in (("no key", None), ("stranger", stranger(keys)),
                        ("membership", ClientCurve.load(keys / "membership")),
                        ("gateway", ClientCurve.load(keys / "gateway"))):
        sub = subscribers[name] = context.socket(zmq.SUB)
        sub.setsockopt(zmq.LINGER, 0)
        if curve is not None:
            curve.apply(sub)
        sub.subscribe(b"")  # every topic: every group and the membership events
        sub.connect(pub)
    backend = Client(context, internal, None, "messages")
    try:
        backend.ask(**hello("messages"))
        deadline = time.monotonic() + 5
        while not subscribers["gateway"].poll(50):  # until the gateway's subscription is in
            backend.ask(system_post=broker_pb2.SystemPost(group_id="g1", sender_name="Bot", text="secret"))
            assert time.monotonic() < deadline, "the keyed subscriber never received anything"
        topic, payload = subscribers["gateway"].recv_multipart()
        assert topic == group_topic("g1") and broker_pb2.Delivery.FromString(payload).text == "secret"
        for name in ("no key", "stranger", "membership"):
            assert subscribers[name].poll(REFUSED_WITHIN_MS) == 0, f"{name} received a publication"
    finally:
        backend.close()
        for sub in subscribers.values():
            sub.close(linger=0)


async def test_the_running_stack_refuses_a_local_process_without_keys(services):
    started, base_url = services
    async with aiohttp.ClientSession() as http:
        api = Api(http, base_url)
        ws_url = base_url.replace("http", "ws") + "/ws"
        ann, bob = await Person.register(api, ws_url, "ann"), await Person.register(api, ws_url, "bob")
        group = await ann.create_group()
        await bob.join(group)
        page = await ann.open_page()
        router, pub = started["broker"].address("router"), started["broker"].address("pub")
        with zmq.Context() as context:
            sniffer = context.socket(zmq.SUB)
            sniffer.setsockopt(zmq.LINGER, 0)
            sniffer.subscribe(b"")
            sniffer.connect(pub)
            impostor = Client(context, router, None, "impostor")
            try:
                person = broker_pb2.Person(id=bob.user["id"], username=bob.username, display_name="Bob")
                assert impostor.ask(REFUSED_WITHIN_MS, open_session=broker_pb2.OpenSession(
                    session_id="fake", account=person, group_ids=[group["id"]])) is None
                await page.post_and_ack(group, "for members only")
                assert sniffer.poll(REFUSED_WITHIN_MS) == 0, "the PUB socket leaked a publication"
                assert sniffer.getsockopt(zmq.EVENTS) & zmq.POLLIN == 0
            finally:
                impostor.close()
                sniffer.close(linger=0)
