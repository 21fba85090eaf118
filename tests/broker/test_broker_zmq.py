"""The real broker on real ZeroMQ sockets (tcp on 127.0.0.1, random ports)."""

import threading

import pytest
import zmq

from chorus.broker.core import BrokerCore
from chorus.broker.server import BrokerServer
from chorus.broker.topics import barrier_topic, group_topic
from chorus.pb import broker_pb2

TIMEOUT_MS = 3000


@pytest.fixture
def broker():
    context = zmq.Context()
    core = BrokerCore(broker_id="b_zmq", gateway_timeout_secs=30, max_text_chars=4000)
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
