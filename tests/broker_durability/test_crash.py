"""An ack means "stored": the real `chorus broker` process is killed with SIGKILL while
several gateways post, restarted on the same SQLite file, and every acked message is in
History with the seq it was acked with; seqs go on without a gap."""

from __future__ import annotations

import secrets
import threading
import time

import pytest
import zmq

from brokercore import joined_groups
from chorus.wire.pb import broker_pb2
from conftest import free_port
from processes import Service, service_env

GROUPS = ["g_one", "g_two"]
POSTERS = 4
REPLY_TIMEOUT_MS = 2000
MIN_ACKED_BEFORE_KILL = 300
POSTING_LIMIT_SECS = 20
MAX_POSTS_PER_POSTER = 5000
HISTORY_PAGE = 100


class Gateway:
    """A DEALER speaking the gateway protocol: Hello, then requests matched by request_id."""

    def __init__(self, context: zmq.Context, router: str, name: str):
        self.dealer = context.socket(zmq.DEALER)
        self.dealer.setsockopt(zmq.LINGER, 0)
        self.dealer.connect(router)
        self.next_id = 0
        assert self.request(hello=broker_pb2.Hello(gateway_id=name)).WhichOneof("kind") == "welcome"

    def request(self, **kind) -> broker_pb2.BrokerReply | None:
        """The reply, or None when the broker did not answer in time (it died)."""
        self.next_id += 1
        self.dealer.send(broker_pb2.GatewayRequest(request_id=self.next_id, **kind).SerializeToString())
        while self.dealer.poll(REPLY_TIMEOUT_MS):
            reply = broker_pb2.BrokerReply.FromString(self.dealer.recv())
            if reply.request_id == self.next_id:
                return reply
        return None

    def open_session(self, session_id: str, account: str) -> None:
        person = broker_pb2.Person(id=account, username=account, display_name=account.title())
        reply = self.request(open_session=broker_pb2.OpenSession(session_id=session_id, account=person,
                                                                 group_ids=GROUPS))
        assert reply.WhichOneof("kind") == "done"

    def history(self, group_id: str) -> list[broker_pb2.Delivery]:
        """Every stored message of the group, oldest first: the latest page, then backwards."""
        newest_first: list[broker_pb2.Delivery] = []
        for _ in range(1000):
            before = newest_first[-1].seq if newest_first else 0
            page = self.request(history=broker_pb2.History(group_id=group_id, before_seq=before,
                                                           limit=HISTORY_PAGE)).messages
            newest_first.extend(page.messages)
            if not page.more:
                return newest_first[::-1]
        raise AssertionError("history did not end")

    def close(self) -> None:
        self.dealer.close(linger=0)


def tell_memberships(context, router: str, accounts: list[str]) -> None:
    """What the membership service does for a broker that does not know it: every account
    below is in every group (the broker refuses posts until it has heard this)."""
    membership = Gateway(context, router, "membership")
    try:
        reply = membership.request(membership_snapshot=broker_pb2.MembershipSnapshot(
            snapshot_id=1, first=True, last=True,
            groups=joined_groups({g: accounts for g in GROUPS})))
        assert reply.WhichOneof("kind") == "done"
    finally:
        membership.close()


def poster(context, router, n, acked, stop, failures):
    """Post until the broker stops answering; record (group, seq) -> text for every ack."""
    gateway = Gateway(context, router, f"poster{n}")
    try:
        gateway.open_session(f"s{n}", f"user{n}")
        for i in range(MAX_POSTS_PER_POSTER):
            if stop.is_set():
                return
            group, text = GROUPS[i % len(GROUPS)], f"p{n}-{i}"
            reply = gateway.request(post=broker_pb2.Post(session_id=f"s{n}", group_id=group, text=text))
            if reply is None:
                return
            if reply.WhichOneof("kind") != "posted":
                failures.append(reply)
                return
            acked[(group, reply.posted.seq)] = text
    finally:
        gateway.close()


@pytest.fixture
def broker_service(tmp_path):
    # Port 0 everywhere: Service pins the ports of the first start, so the restart binds the same.
    args = ["--router", "tcp://127.0.0.1:0", "--pub", "tcp://127.0.0.1:0", "--grpc-listen", "127.0.0.1:0",
            "--membership", f"127.0.0.1:{free_port()}", "--data-dir", str(tmp_path / "data"),
            "--insecure-plaintext"]  # these raw DEALERs test durability, not keys (tests/test_internal_keys.py)
    service = Service("broker", args, service_env(secrets.token_urlsafe(32)), tmp_path)
    yield service
    if service.process is not None and service.process.poll() is None:
        service.stop()


def test_every_acked_message_survives_kill_9_and_seqs_continue(broker_service):
    service = broker_service
    router = service.start().address("router")
    context = zmq.Context()
    accounts = [f"user{n}" for n in range(POSTERS)] + ["reader"]
    try:
        tell_memberships(context, router, accounts)
        acked: dict[tuple[str, int], str] = {}
        failures: list = []
        stop = threading.Event()
        threads = [threading.Thread(target=poster, args=(context, router, n, acked, stop, failures))
                   for n in range(POSTERS)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + POSTING_LIMIT_SECS
        while len(acked) < MIN_ACKED_BEFORE_KILL and time.monotonic() < deadline:
            time.sleep(0.02)
        service.kill()  # SIGKILL mid-stream: posts are in flight
        for thread in threads:
            thread.join(POSTING_LIMIT_SECS)
        stop.set()
        assert not any(t.is_alive() for t in threads)
        assert failures == [], failures
        assert len(acked) >= MIN_ACKED_BEFORE_KILL, f"only {len(acked)} acks before the deadline"

        service.start()  # same ports, same data directory
        tell_memberships(context, router, accounts)
        reader = Gateway(context, router, "reader")
        try:
            stored = {group: reader.history(group) for group in GROUPS}
            for group, messages in stored.items():
                seqs = [m.seq for m in messages]
                assert seqs == list(range(1, len(seqs) + 1)), f"{group}: seqs are not gap-free"
            by_key = {(g, m.seq): m.text for g, messages in stored.items() for m in messages}
            lost = {key: text for key, text in acked.items() if by_key.get(key) != text}
            assert lost == {}, f"{len(lost)} acked messages are missing or changed after the crash"

            reader.open_session("after", "reader")
            for group in GROUPS:
                reply = reader.request(post=broker_pb2.Post(session_id="after", group_id=group, text="after"))
                assert reply.posted.seq == len(stored[group]) + 1, "seqs continue without a gap"
        finally:
            reader.close()
        assert service.stop() == 0, "SIGTERM is a clean exit"
    finally:
        context.destroy(linger=0)
