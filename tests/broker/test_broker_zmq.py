"""The real broker on real ZeroMQ sockets (tcp on 127.0.0.1, random ports) and a real
SQLite message store in tmp_path."""

import threading

import pytest
import zmq

from brokercore import next_change_id
from chorus.broker.core import BrokerCore
from chorus.broker.server import BrokerServer
from chorus.broker.storage import MessageStore, migrate
from chorus.common.db import create_db_engine, sqlite_url
from chorus.wire.topics import barrier_topic, group_topic
from chorus.wire.pb import broker_pb2

TIMEOUT_MS = 3000


class CountingStore(MessageStore):
    """The real store, counting its group commits."""

    def __init__(self, engine):
        super().__init__(engine)
        self.batch_sizes: list[int] = []

    def append_batch(self, messages, keys=(), fence=None):
        super().append_batch(messages, keys, fence)
        self.batch_sizes.append(len(messages))


@pytest.fixture
def store(tmp_path):
    engine = create_db_engine(sqlite_url(tmp_path, "broker"))
    migrate(engine)
    yield CountingStore(engine)
    engine.dispose()


@pytest.fixture
def broker(store):
    context = zmq.Context()
    core = BrokerCore(broker_id="b_zmq", store=store, gateway_timeout_secs=30, max_text_chars=4000)
    core.memberships.snapshot_page(1, [], first=True, last=True)  # the membership service: no one yet
    server = BrokerServer(core, router_endpoint="tcp://127.0.0.1:0", pub_endpoint="tcp://127.0.0.1:0",
                          pub_hwm_msgs=1000, tick_secs=0.05, context=context)
    endpoints = server.bind()
    stop = threading.Event()
    thread = threading.Thread(target=server.run, args=(stop.is_set,), daemon=True)
    thread.start()
    yield context, endpoints
    stop.set()
    thread.join(5)
    server.close()
    context.destroy(linger=0)


class Gateway:
    """A minimal gateway: DEALER for requests, SUB for publications."""

    def __init__(self, context, endpoints, name):
        router, pub = endpoints
        self.dealer = context.socket(zmq.DEALER)
        self.dealer.setsockopt(zmq.ROUTING_ID, name.encode())
        self.dealer.setsockopt(zmq.RCVTIMEO, TIMEOUT_MS)
        self.dealer.connect(router)
        self.sub = context.socket(zmq.SUB)
        self.sub.setsockopt(zmq.RCVTIMEO, TIMEOUT_MS)
        self.sub.connect(pub)
        self.next_id = 0
        assert self.request(hello=broker_pb2.Hello(gateway_id=name)).welcome.fresh

    def request(self, **kind) -> broker_pb2.BrokerReply:
        self.next_id += 1
        self.dealer.send(broker_pb2.GatewayRequest(request_id=self.next_id, **kind).SerializeToString())
        reply = broker_pb2.BrokerReply.FromString(self.dealer.recv())
        assert reply.request_id == self.next_id
        return reply

    def open(self, session_id, account, groups):
        for g in groups:  # what the membership service tells the broker when the account joins
            self.request(membership_change=broker_pb2.MembershipChange(
                account_id=account, group=broker_pb2.GroupRef(id=g, name=g), joined=True,
                change_id=next_change_id()))
        for g in groups:
            self.sub.subscribe(group_topic(g))
        nonce = f"{account}-{session_id}".encode()
        self.sub.subscribe(barrier_topic(nonce))
        assert self.request(sync=broker_pb2.Sync(nonce=nonce)).WhichOneof("kind") == "done"
        person = broker_pb2.Person(id=account, username=account, display_name=account)
        self.request(open_session=broker_pb2.OpenSession(session_id=session_id, account=person,
                                                         group_ids=groups))

    def post(self, session_id, group, text):
        return self.request(post=broker_pb2.Post(session_id=session_id, group_id=group, text=text))

    def deliveries(self, count):
        got = []
        for _ in range(count):
            topic, payload = self.sub.recv_multipart()
            got.append((topic, broker_pb2.Delivery.FromString(payload)))
        return got

    def assert_nothing_delivered(self, wait_ms=200):
        assert self.sub.poll(wait_ms) == 0, "a publication arrived that should not have"


def test_each_gateway_gets_one_copy_of_its_groups_messages(broker):
    context, endpoints = broker
    gw1, gw2, gw3 = (Gateway(context, endpoints, n) for n in ("gw1", "gw2", "gw3"))
    gw1.open("s1", "alice", ["g1"])
    gw1.open("s2", "bob", ["g1"])    # two members on gw1: still one copy for gw1
    gw2.open("s3", "carol", ["g1", "g2"])
    gw3.open("s4", "dave", ["g2"])   # not in g1: gw3 must get nothing
    posted = gw1.post("s1", "g1", "hi all").posted
    assert posted.seq == 1
    [(topic, delivery)] = gw1.deliveries(1)
    assert topic == group_topic("g1") and delivery.text == "hi all" and delivery.seq == 1
    [(_, delivery)] = gw2.deliveries(1)
    assert delivery.sender.id == "alice"
    gw1.assert_nothing_delivered()
    gw3.assert_nothing_delivered()


def test_subscription_barrier_means_no_message_after_sync_is_lost(broker):
    context, endpoints = broker
    sender = Gateway(context, endpoints, "sender")
    sender.open("s1", "alice", ["g1"])
    for i in range(20):  # a fresh gateway each time: the race the barrier closes
        receiver = Gateway(context, endpoints, f"receiver{i}")
        receiver.open(f"r{i}", f"user{i}", ["g1"])
        sender.post("s1", "g1", f"m{i}")
        [(_, delivery)] = receiver.deliveries(1)
        assert delivery.text == f"m{i}"


def test_non_member_post_fails_and_nothing_is_published(broker):
    context, endpoints = broker
    gw = Gateway(context, endpoints, "gw")
    gw.open("s1", "mallory", ["g2"])
    gw.sub.subscribe(group_topic("g1"))
    reply = gw.post("s1", "g1", "sneaky")
    assert reply.failure.code == broker_pb2.Failure.NOT_MEMBER
    gw.assert_nothing_delivered()


def test_a_garbage_frame_does_not_stop_the_broker(broker):
    context, endpoints = broker
    gw = Gateway(context, endpoints, "gw")
    gw.dealer.send_multipart([b"one", b"too many frames"])
    gw.dealer.send(b"\xff\xfenot protobuf")
    assert broker_pb2.BrokerReply.FromString(gw.dealer.recv()).failure.code == broker_pb2.Failure.BAD_REQUEST
    gw.open("s1", "alice", ["g1"])
    assert gw.post("s1", "g1", "still serving").posted.seq == 1


def test_pipelined_posts_are_committed_in_batches_and_acked_in_order(broker, store):
    context, endpoints = broker
    gateways = [Gateway(context, endpoints, f"gw{n}") for n in range(3)]
    for n, gw in enumerate(gateways):
        gw.open(f"s{n}", f"user{n}", ["g1"])
    posts_each = 200
    for gw in gateways:  # send everything first, read the acks after: the posts queue up
        for i in range(posts_each):
            gw.next_id += 1
            gw.dealer.send(broker_pb2.GatewayRequest(request_id=gw.next_id, post=broker_pb2.Post(
                session_id=f"s{gateways.index(gw)}", group_id="g1", text=f"{i}")).SerializeToString())
    seqs = []
    for gw in gateways:
        replies = [broker_pb2.BrokerReply.FromString(gw.dealer.recv()) for _ in range(posts_each)]
        assert [r.request_id for r in replies] == list(range(gw.next_id - posts_each + 1, gw.next_id + 1))
        got = [r.posted.seq for r in replies]
        assert got == sorted(got), "one gateway's posts keep their order"
        seqs += got
    assert sorted(seqs) == list(range(1, 3 * posts_each + 1))
    assert sum(store.batch_sizes) == 3 * posts_each
    assert len(store.batch_sizes) < 3 * posts_each / 5, f"not batched: {len(store.batch_sizes)} commits"
    page = gateways[0].request(history=broker_pb2.History(group_id="g1", limit=3)).messages
    assert [m.seq for m in page.messages] == [600, 599, 598] and page.more
