"""The gateway's side of the broker: typed requests, subscriptions, and the publications feed.

``Broker`` is the interface the hub and the WebSocket sessions use (a test
passes a fake with the same methods). ``ZmqBroker`` implements it over the
conversation driver (chorus.common.brokerlink.AsyncBrokerLink, the DEALER)
and ``Publications`` (the SUB socket). The broker's refusals become the
gateway's own errors here, once (``_api_error``).

SUB: group topics this gateway's sessions need, plus the control topic for
membership events. Subscriptions are reference-counted by LocalSessions; this
module only applies them. ``sync()`` is the subscription barrier: it returns
once every subscription made before it is active at the broker's XPUB.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
from collections.abc import Callable, Iterable
from typing import Protocol

import zmq
import zmq.asyncio
from google.protobuf.message import DecodeError

from chorus.common.brokerlink import AsyncBrokerLink
from chorus.common.curve import ClientCurve
from chorus.wire.conversation import BrokerProblem, Malformed
from chorus.wire.conversation import NotMember as NotMemberRefusal
from chorus.wire.pb import broker_pb2
from chorus.wire.topics import CLUSTER_TOPIC, CONTROL_TOPIC, barrier_topic, group_of_topic, group_topic

from .errors import ApiError, InvalidArgument, NotMember, Unavailable

__all__ = ["Broker", "PublicationSink", "ZmqBroker", "Publications"]

log = logging.getLogger(__name__)

# Bounded, so a gateway that falls behind makes the broker's PUB drop for this
# gateway only (never block) instead of this process growing without limit.
SUB_RCVHWM_MSGS = 100_000
# Publications already queued are taken in one go, up to this many: a gateway
# that falls behind then writes several frames to a socket in one syscall.
MAX_PUBLICATIONS_PER_BATCH = 512


class Broker(Protocol):
    """What the hub and the sessions ask of the broker."""

    def subscribe(self, group_id: str) -> None: ...
    def unsubscribe(self, group_id: str) -> None: ...
    async def sync(self) -> None: ...
    async def open_session(self, session_id: str, user: dict, group_ids: Iterable[str]) -> None: ...
    async def close_session(self, session_id: str) -> None: ...
    async def post(self, session_id: str, group_id: str, text: str,
                   idempotency_key: str = "") -> broker_pb2.Posted: ...
    async def history(self, group_id: str, *, before_seq: int = 0, after_seq: int | None = None,
                      limit: int) -> tuple[list[broker_pb2.Delivery], bool]: ...
    async def group_states(self, account_id: str, group_ids: Iterable[str]) -> dict[str, tuple[int, int]]: ...
    async def mark_read(self, account_id: str, group_id: str, seq: int) -> tuple[int, int]: ...
    async def online(self, group_id: str) -> set[str]: ...


class PublicationSink(Protocol):
    """Where the publications feed goes (the hub)."""

    def deliver(self, batch: list[tuple[str, bytes]]) -> None: ...
    def membership_event(self, event: broker_pb2.MembershipEvent) -> None: ...


def _api_error(exc: BrokerProblem) -> ApiError:
    """The broker's refusals as the person sees them; everything else is "try again"."""
    if isinstance(exc, NotMemberRefusal):
        return NotMember(str(exc))
    if isinstance(exc, Malformed):
        return InvalidArgument(str(exc))
    return Unavailable("the message broker is unavailable, try again")


class ZmqBroker:
    def __init__(self, link: AsyncBrokerLink, publications: "Publications") -> None:
        self.link = link
        self.publications = publications

    # subscriptions -----------------------------------------------------------

    def subscribe(self, group_id: str) -> None:
        self.publications.subscribe(group_topic(group_id))

    def unsubscribe(self, group_id: str) -> None:
        self.publications.unsubscribe(group_topic(group_id))

    async def sync(self) -> None:
        nonce = secrets.token_bytes(12)
        topic = barrier_topic(nonce)
        self.publications.subscribe(topic)
        try:
            await self._ask("done", sync=broker_pb2.Sync(nonce=nonce))
        finally:
            self.publications.unsubscribe(topic)

    # requests ---------------------------------------------------------------

    async def open_session(self, session_id: str, user: dict, group_ids: Iterable[str]) -> None:
        person = broker_pb2.Person(id=user["id"], username=user["username"], display_name=user["display_name"])
        await self._ask("done", open_session=broker_pb2.OpenSession(
            session_id=session_id, account=person, group_ids=list(group_ids)))

    async def close_session(self, session_id: str) -> None:
        await self._ask("done", close_session=broker_pb2.CloseSession(session_id=session_id))

    async def post(self, session_id: str, group_id: str, text: str,
                   idempotency_key: str = "") -> broker_pb2.Posted:
        return await self._ask("posted", post=broker_pb2.Post(
            session_id=session_id, group_id=group_id, text=text, idempotency_key=idempotency_key))

    async def history(self, group_id: str, *, before_seq: int = 0, after_seq: int | None = None,
                      limit: int) -> tuple[list[broker_pb2.Delivery], bool]:
        """Oldest first above ``after_seq`` when given (0 too), else newest first below
        ``before_seq`` (0: the latest); and whether more exist."""
        history = broker_pb2.History(group_id=group_id, before_seq=before_seq, limit=limit)
        if after_seq is not None:
            history.after_seq = after_seq
        messages = await self._ask("messages", history=history)
        return list(messages.messages), messages.more

    async def group_states(self, account_id: str, group_ids: Iterable[str]) -> dict[str, tuple[int, int]]:
        """group id -> (last seq, this account's read seq)."""
        states = await self._ask("states", group_states=broker_pb2.GroupStates(
            account_id=account_id, group_ids=list(group_ids)))
        return {g.group_id: (g.last_seq, g.read_seq) for g in states.groups}

    async def mark_read(self, account_id: str, group_id: str, seq: int) -> tuple[int, int]:
        """Store the marker; the group's (last seq, read seq) after it."""
        states = await self._ask("states", mark_read=broker_pb2.MarkRead(
            account_id=account_id, group_id=group_id, seq=seq))
        [state] = states.groups
        return state.last_seq, state.read_seq

    async def online(self, group_id: str) -> set[str]:
        online = await self._ask("online_members", online=broker_pb2.Online(group_id=group_id))
        return set(online.account_ids)

    async def _ask(self, expected: str, **kind):
        try:
            return await self.link.ask(expected, **kind)
        except BrokerProblem as exc:
            raise _api_error(exc) from None


class Publications:
    """The SUB socket: subscriptions in, batches of publications out to a sink."""

    def __init__(self, endpoint: str | None, *, curve: ClientCurve | None = None,
                 context: zmq.asyncio.Context | None = None) -> None:
        self.endpoint = endpoint  # None: connected later, to each broker of a cluster (``connect``)
        self.on_cluster: Callable[[bytes], None] | None = None  # ClusterInfo announcements
        self._curve = curve
        self._context = context or zmq.asyncio.Context.instance()
        self._socket: zmq.asyncio.Socket | None = None

    def start(self) -> None:
        socket = self._context.socket(zmq.SUB)
        socket.setsockopt(zmq.RCVHWM, SUB_RCVHWM_MSGS)
        socket.setsockopt(zmq.LINGER, 0)
        socket.subscribe(CONTROL_TOPIC)
        socket.subscribe(CLUSTER_TOPIC)
        if self._curve is not None:
            self._curve.apply(socket)
        if self.endpoint is not None:
            socket.connect(self.endpoint)
        self._socket = socket

    def connect(self, endpoint: str) -> None:
        """Also receive from this PUB (a cluster's brokers each have one); our subscriptions go to it."""
        self._socket.connect(endpoint)

    def disconnect(self, endpoint: str) -> None:
        with contextlib.suppress(zmq.ZMQError):  # never connected, or already gone
            self._socket.disconnect(endpoint)

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close(linger=0)

    def subscribe(self, topic: bytes) -> None:
        self._socket.subscribe(topic)

    def unsubscribe(self, topic: bytes) -> None:
        self._socket.unsubscribe(topic)

    async def run(self, sink: PublicationSink) -> None:
        """Feed ``sink`` until cancelled: membership events one by one, deliveries a batch at a time."""
        # The same socket without asyncio, to take what is already queued without a future each.
        queued = zmq.Socket.shadow(self._socket.underlying)
        while True:
            batch = [await self._socket.recv_multipart()]
            with contextlib.suppress(zmq.Again):
                while len(batch) < MAX_PUBLICATIONS_PER_BATCH:
                    batch.append(queued.recv_multipart(zmq.NOBLOCK))
            deliveries = []
            for frames in batch:
                if len(frames) != 2:
                    continue
                topic, payload = frames
                if topic == CONTROL_TOPIC:
                    _event(sink, payload)
                elif topic == CLUSTER_TOPIC:
                    if self.on_cluster is not None:
                        self.on_cluster(payload)
                else:
                    group = group_of_topic(topic)
                    if group is not None:
                        deliveries.append((group, payload))
            if deliveries:
                try:
                    sink.deliver(deliveries)
                except Exception:  # one bad batch must not stop the next ones
                    log.exception("failed to fan out %d publications", len(deliveries))


def _event(sink: PublicationSink, payload: bytes) -> None:
    try:
        event = broker_pb2.MembershipEvent.FromString(payload)
    except DecodeError:
        log.error("dropped a control publication that is not a MembershipEvent")
        return
    try:
        sink.membership_event(event)
    except Exception:
        log.exception("failed to handle a membership event")
