"""The gateway's two ZeroMQ sockets to the broker, on the asyncio loop.

DEALER: requests with a request_id, answered by the broker's ROUTER; each
request waits at most ``timeout_secs`` (then Unavailable). IMMEDIATE is set so
requests are never queued for a broker that is not connected: a post the
person was told failed must not be delivered minutes later.

SUB: group topics this gateway's sessions need, plus the control topic for
membership events. Subscriptions are reference-counted by LocalSessions; this
class only applies them. ``sync()`` is the subscription barrier (see
chorus.broker.barrier).

A heartbeat Hello goes out every ``heartbeat_secs``; when the broker answers
``fresh`` (it restarted, or expired us) ``on_fresh`` re-registers sessions.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import secrets
from collections.abc import Awaitable, Callable

import zmq
import zmq.asyncio

from chorus.wire.topics import CONTROL_TOPIC, barrier_topic, group_of_topic, group_topic
from chorus.wire.pb import broker_pb2

from .errors import ApiError, InvalidArgument, NotMember, Unavailable

__all__ = ["BrokerClient"]

log = logging.getLogger(__name__)

# Bounded, so a gateway that falls behind makes the broker's PUB drop for this
# gateway only (never block) instead of this process growing without limit.
SUB_RCVHWM_MSGS = 100_000
# Publications already queued are taken in one go, up to this many: a gateway
# that falls behind then writes several frames to a socket in one syscall.
MAX_PUBLICATIONS_PER_BATCH = 512

_FAILURES: dict[int, type[ApiError]] = {
    broker_pb2.Failure.NOT_MEMBER: NotMember,
    broker_pb2.Failure.BAD_REQUEST: InvalidArgument,
    broker_pb2.Failure.UNAVAILABLE: Unavailable,
}


class BrokerClient:
    def __init__(self, *, router: str, pub: str, gateway_id: str, timeout_secs: float,
                 heartbeat_secs: float, context: zmq.asyncio.Context | None = None) -> None:
        self.gateway_id = gateway_id
        self._router = router
        self._pub = pub
        self._timeout_secs = timeout_secs
        self._heartbeat_secs = heartbeat_secs
        self._context = context or zmq.asyncio.Context.instance()
        self._request_ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future] = {}
        self._tasks: list[asyncio.Task] = []
        self.broker_id: str | None = None
        # set by the hub before start()
        # (group, Delivery bytes) in publication order, a batch at a time
        self.on_deliveries: Callable[[list[tuple[str, bytes]]], None] = lambda batch: None
        self.on_event: Callable[[broker_pb2.MembershipEvent], None] = lambda event: None
        self.on_fresh: Callable[[], Awaitable[None]] = _nothing

    async def start(self) -> None:
        self.dealer = self._context.socket(zmq.DEALER)
        self.dealer.setsockopt(zmq.ROUTING_ID, self.gateway_id.encode())
        self.dealer.setsockopt(zmq.IMMEDIATE, 1)
        self.dealer.setsockopt(zmq.LINGER, 0)
        self.dealer.connect(self._router)
        self.sub = self._context.socket(zmq.SUB)
        self.sub.setsockopt(zmq.RCVHWM, SUB_RCVHWM_MSGS)
        self.sub.setsockopt(zmq.LINGER, 0)
        self.sub.subscribe(CONTROL_TOPIC)
        self.sub.connect(self._pub)
        self._tasks = [
            asyncio.create_task(self._replies(), name="broker-replies"),
            asyncio.create_task(self._publications(), name="broker-publications"),
            asyncio.create_task(self._heartbeat(), name="broker-heartbeat"),
        ]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.dealer.close()
        self.sub.close()

    # subscriptions ----------------------------------------------------------

    def subscribe(self, group_id: str) -> None:
        self.sub.subscribe(group_topic(group_id))

    def unsubscribe(self, group_id: str) -> None:
        self.sub.unsubscribe(group_topic(group_id))

    async def sync(self) -> None:
        """Return once every subscription made before this call is active at the broker."""
        nonce = secrets.token_bytes(12)
        topic = barrier_topic(nonce)
        self.sub.subscribe(topic)
        try:
            await self._request(sync=broker_pb2.Sync(nonce=nonce))
        finally:
            self.sub.unsubscribe(topic)

    # requests ---------------------------------------------------------------

    async def open_session(self, session_id: str, user: dict, group_ids) -> None:
        person = broker_pb2.Person(id=user["id"], username=user["username"],
                                   display_name=user["display_name"])
        await self._request(open_session=broker_pb2.OpenSession(
            session_id=session_id, account=person, group_ids=list(group_ids)))

    async def close_session(self, session_id: str) -> None:
        await self._request(close_session=broker_pb2.CloseSession(session_id=session_id))

    async def post(self, session_id: str, group_id: str, text: str) -> broker_pb2.Posted:
        reply = await self._request(post=broker_pb2.Post(
            session_id=session_id, group_id=group_id, text=text))
        return reply.posted

    async def history(self, group_id: str, *, before_seq: int = 0, after_seq: int | None = None,
                      limit: int) -> tuple[list[broker_pb2.Delivery], bool]:
        """Oldest first above ``after_seq`` when given (0 too), else newest first below
        ``before_seq`` (0: the latest); and whether more exist."""
        history = broker_pb2.History(group_id=group_id, before_seq=before_seq, limit=limit)
        if after_seq is not None:
            history.after_seq = after_seq
        reply = await self._request(history=history)
        return list(reply.messages.messages), reply.messages.more

    async def group_states(self, account_id: str, group_ids) -> dict[str, tuple[int, int]]:
        """group id -> (last seq, this account's read seq)."""
        reply = await self._request(group_states=broker_pb2.GroupStates(
            account_id=account_id, group_ids=list(group_ids)))
        return {g.group_id: (g.last_seq, g.read_seq) for g in reply.states.groups}

    async def mark_read(self, account_id: str, group_id: str, seq: int) -> tuple[int, int]:
        """Store the marker; the group's (last seq, read seq) after it."""
        reply = await self._request(mark_read=broker_pb2.MarkRead(
            account_id=account_id, group_id=group_id, seq=seq))
        [state] = reply.states.groups
        return state.last_seq, state.read_seq

    async def online(self, group_id: str) -> set[str]:
        reply = await self._request(online=broker_pb2.Online(group_id=group_id))
        return set(reply.online_members.account_ids)

    async def _request(self, **kind) -> broker_pb2.BrokerReply:
        request_id = next(self._request_ids)
        future = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        request = broker_pb2.GatewayRequest(request_id=request_id, **kind)
        try:
            async with asyncio.timeout(self._timeout_secs):
                await self.dealer.send(request.SerializeToString())
                reply = await future
        except TimeoutError:
            raise Unavailable("the message broker did not answer in time") from None
        finally:
            self._pending.pop(request_id, None)
        if reply.WhichOneof("kind") == "failure":
            kind_of_error = _FAILURES.get(reply.failure.code, Unavailable)
            raise kind_of_error(reply.failure.message)
        return reply

    # loops ------------------------------------------------------------------

    async def _replies(self) -> None:
        while True:
            payload = await self.dealer.recv()
            reply = broker_pb2.BrokerReply()
            try:
                reply.ParseFromString(payload)
            except Exception:
                log.warning("dropped an unparsable broker reply")
                continue
            future = self._pending.get(reply.request_id)
            if future is not None and not future.done():
                future.set_result(reply)

    async def _publications(self) -> None:
        # The same socket without asyncio, to take what is already queued without a future each.
        queued = zmq.Socket.shadow(self.sub.underlying)
        while True:
            batch = [await self.sub.recv_multipart()]
            with contextlib.suppress(zmq.Again):
                while len(batch) < MAX_PUBLICATIONS_PER_BATCH:
                    batch.append(queued.recv_multipart(zmq.NOBLOCK))
            deliveries = []
            for frames in batch:
                if len(frames) != 2:
                    continue
                topic, payload = frames
                if topic == CONTROL_TOPIC:
                    try:
                        self.on_event(broker_pb2.MembershipEvent.FromString(payload))
                    except Exception:  # one bad publication must not stop the next ones
                        log.exception("failed to handle a membership event")
                else:
                    group = group_of_topic(topic)
                    if group is not None:
                        deliveries.append((group, payload))
            if deliveries:
                try:
                    self.on_deliveries(deliveries)
                except Exception:
                    log.exception("failed to fan out %d publications", len(deliveries))

    async def _heartbeat(self) -> None:
        hello = broker_pb2.Hello(gateway_id=self.gateway_id)
        resync = False
        while True:
            try:
                reply = await self._request(hello=hello)
            except ApiError:
                log.warning("broker %s not answering", self._router)
            else:
                if reply.welcome.broker_id != self.broker_id:
                    log.info("broker %s is %s", self._router, reply.welcome.broker_id)
                    self.broker_id = reply.welcome.broker_id
                # Keep retrying until the sessions are registered again: the next
                # Welcome will not say fresh any more.
                resync = resync or reply.welcome.fresh
                if resync:
                    try:
                        await self.on_fresh()
                        resync = False
                    except Exception:
                        log.exception("re-registering sessions with the broker failed")
            await asyncio.sleep(self._heartbeat_secs)


async def _nothing() -> None:
    return None
