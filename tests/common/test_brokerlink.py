"""The conversation's drivers on real ZeroMQ sockets against the real broker loop."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time

import pytest
import zmq
import zmq.asyncio

from brokercore import joined_groups
from chorus.broker.core import BrokerCore
from chorus.broker.server import BrokerServer
from chorus.broker.storage import MessageStore, migrate
from chorus.common.brokerlink import AsyncBrokerLink, ThreadBrokerLink
from chorus.common.db import create_db_engine, sqlite_url
from chorus.wire.conversation import BrokerTimeout, ConnectionLost, NotReady
from chorus.wire.pb import broker_pb2


@pytest.fixture
def broker(tmp_path):
    engine = create_db_engine(sqlite_url(tmp_path, "broker"))
    migrate(engine)
    context = zmq.Context()
    core = BrokerCore(broker_id="b", store=MessageStore(engine), gateway_timeout_secs=30, max_text_chars=100)
    server = BrokerServer(core, router_endpoint="tcp://127.0.0.1:0", pub_endpoint="tcp://127.0.0.1:0",
                          pub_hwm_msgs=100, tick_secs=0.05, context=context)
    router, _ = server.bind()
    stop = threading.Event()
    thread = threading.Thread(target=server.run, args=(stop.is_set,), daemon=True)
    thread.start()
    yield core, router
    stop.set()
    thread.join(5)
    server.close()
    context.destroy(linger=0)
    engine.dispose()


def _membership_snapshot(router: str, account: str, group: str) -> None:
    """What the membership service tells a broker that does not know it, from a link of its own."""
    link = ThreadBrokerLink(zmq.Context.instance(), router, client_id=f"membership-{time.monotonic_ns()}",
                            timeout_secs=5)
    try:
        groups = joined_groups({group: [account]})
        link.request(time.monotonic() + 5, "done", membership_snapshot=broker_pb2.MembershipSnapshot(
            snapshot_id=1, first=True, last=True, groups=groups))
    finally:
        link.close()


@contextlib.asynccontextmanager
async def gateway_with_ann(router: str, *, timeout_secs: float):
    """A gateway's link, welcomed, with Ann's session (in g1, she says) registered."""
    link = AsyncBrokerLink(router, client_id=f"gw-{time.monotonic_ns()}", timeout_secs=timeout_secs,
                           heartbeat_secs=1, context=zmq.asyncio.Context.instance())
    await link.start()
    try:
        await link.ask("welcome", hello=link.conversation.hello_message())
        person = broker_pb2.Person(id="ann", username="ann", display_name="Ann")
        await link.ask("done", open_session=broker_pb2.OpenSession(session_id="s1", account=person,
                                                                    group_ids=["g1"]))
        yield link
    finally:
        await link.close()


async def test_a_post_to_a_broker_still_loading_is_asked_again_until_it_is_ready(broker):
    _, router = broker
    async with gateway_with_ann(router, timeout_secs=5) as link:
        post = asyncio.create_task(link.ask("posted", post=broker_pb2.Post(session_id="s1", group_id="g1",
                                                                           text="hello")))
        await asyncio.sleep(0.3)
        assert not post.done(), "NOT_READY is asked again, not handed to the person"
        await asyncio.to_thread(_membership_snapshot, router, "ann", "g1")
        assert (await asyncio.wait_for(post, 5)).seq == 1


async def test_a_broker_that_stays_not_ready_ends_in_its_refusal_at_the_deadline(broker):
    _, router = broker
    async with gateway_with_ann(router, timeout_secs=0.5) as link:
        started = time.monotonic()
        with pytest.raises(NotReady):
            await link.ask("posted", post=broker_pb2.Post(session_id="s1", group_id="g1", text="hello"))
        assert 0.4 < time.monotonic() - started < 2.0


def test_a_thread_link_with_no_broker_times_out_by_its_deadline():
    with zmq.Context() as context:
        link = ThreadBrokerLink(context, "tcp://127.0.0.1:9", client_id="nobody", timeout_secs=0.3)
        try:
            started = time.monotonic()
            with pytest.raises(BrokerTimeout):
                link.request(time.monotonic() + 0.3, "done", close_session=broker_pb2.CloseSession(session_id="s"))
            assert time.monotonic() - started < 1.5
        finally:
            link.close()


async def test_requests_out_when_the_broker_goes_away_fail_at_once_not_at_the_deadline(tmp_path):
    """A broker that dies with a request out never answers it; the link says so as soon as
    the connection drops instead of making the person wait for the whole deadline."""
    with zmq.Context() as context:
        router = context.socket(zmq.ROUTER)  # a broker that takes the request and dies
        port = router.bind_to_random_port("tcp://127.0.0.1")
        link = AsyncBrokerLink(f"tcp://127.0.0.1:{port}", client_id="gw-c", timeout_secs=10, heartbeat_secs=1,
                               context=zmq.asyncio.Context.instance())
        await link.start()
        try:
            request = asyncio.create_task(link.ask("done", close_session=broker_pb2.CloseSession(session_id="s")))
            assert await asyncio.to_thread(router.poll, 5000), "the request reached the broker"
            router.recv_multipart()
            started = time.monotonic()
            router.close(linger=0)
            with pytest.raises(ConnectionLost):
                await asyncio.wait_for(request, 5)
            assert time.monotonic() - started < 2.0
            assert link.conversation.needs_hello
        finally:
            await link.close()
