"""The broker's decisions, without sockets: requests in, replies and publications out.

The ZeroMQ driver (server.py) hands every ROUTER message to ``handle_request``
and every XPUB subscription message to ``handle_subscription``, calls ``tick``
periodically, and sends whatever they return. Nothing a peer sends can stop
the broker: a bad envelope becomes a Failure reply, never an exception.

Message policy: a Post is accepted only from a registered session whose
account is in the group; it gets the group's next sequence number (per group,
strictly increasing, starting at 1 in this process) and the broker's wall
clock time, is published ONCE on the group's topic (ZeroMQ copies it to each
subscribed gateway, not to each member) and acked to the sender.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from google.protobuf.message import DecodeError

from chorus.pb import broker_pb2

from .barrier import SubscriptionBarrier
from .errors import BadRequest, BrokerError, NotMember, UnknownGateway, UnknownSession
from .routing import RoutingTable
from .topics import BARRIER_PREFIX, CONTROL_TOPIC, group_topic

__all__ = ["BrokerCore", "Reply", "Publish", "Output"]

log = logging.getLogger(__name__)

MAX_ID_CHARS = 64


@dataclass(frozen=True, slots=True)
class Reply:
    identity: bytes
    payload: bytes


@dataclass(frozen=True, slots=True)
class Publish:
    topic: bytes
    payload: bytes


Output = Reply | Publish


class BrokerCore:
    def __init__(
        self,
        *,
        broker_id: str,
        gateway_timeout_secs: float,
        max_text_chars: int,
        barrier_ttl_secs: float = 30.0,
        wall_clock_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.broker_id = broker_id
        self.routing = RoutingTable()
        self._gateway_timeout_secs = gateway_timeout_secs
        self._max_text_chars = max_text_chars
        self._barrier = SubscriptionBarrier(ttl_secs=barrier_ttl_secs)
        self._wall_clock_ms = wall_clock_ms
        self._monotonic = monotonic
        self._gateways: dict[bytes, float] = {}  # identity -> last heard (monotonic)
        self._last_seq: dict[str, int] = {}
        self._handlers = {
            "hello": self._hello,
            "open_session": self._open_session,
            "close_session": self._close_session,
            "post": self._post,
            "membership_change": self._membership_change,
            "sync": self._sync,
        }

    # entry points -----------------------------------------------------------

    def handle_request(self, identity: bytes, payload: bytes) -> list[Output]:
        request = broker_pb2.GatewayRequest()
        try:
            request.ParseFromString(payload)
        except DecodeError:
            return [self._failure(identity, 0, BadRequest("envelope is not a GatewayRequest"))]
        kind = request.WhichOneof("kind")
        try:
            if kind is None:
                raise BadRequest("GatewayRequest has no request in it")
            if kind != "hello":
                if identity not in self._gateways:
                    raise UnknownGateway("say Hello first")
                self._gateways[identity] = self._monotonic()
            return self._handlers[kind](identity, request.request_id, getattr(request, kind))
        except BrokerError as exc:
            return [self._failure(identity, request.request_id, exc)]

    def handle_subscription(self, message: bytes) -> list[Output]:
        """An XPUB message: b"\\x01" + topic subscribes, b"\\x00" + topic unsubscribes."""
        if len(message) < 1 or message[0] != 1 or not message[1:].startswith(BARRIER_PREFIX):
            return []
        nonce = message[1 + len(BARRIER_PREFIX):]
        waiter = self._barrier.marker_seen(nonce, self._monotonic())
        if waiter is None:
            return []
        identity, request_id = waiter
        return [self._reply(identity, request_id, done=broker_pb2.Done())]

    def tick(self) -> list[Output]:
        """Expire silent gateways (dropping their sessions) and stale barrier entries."""
        now = self._monotonic()
        cutoff = now - self._gateway_timeout_secs
        for identity in [g for g, seen in self._gateways.items() if seen < cutoff]:
            del self._gateways[identity]
            dropped = self.routing.drop_gateway(identity)
            log.warning("gateway %r silent for %.0fs: dropped %d sessions",
                        identity, self._gateway_timeout_secs, dropped)
        self._barrier.expire(now)
        return []

    # handlers ---------------------------------------------------------------

    def _hello(self, identity: bytes, request_id: int, hello) -> list[Output]:
        fresh = identity not in self._gateways
        self._gateways[identity] = self._monotonic()
        if fresh:
            log.info("gateway %r (%s) connected", identity, hello.gateway_id)
        welcome = broker_pb2.Welcome(broker_id=self.broker_id, fresh=fresh)
        return [self._reply(identity, request_id, welcome=welcome)]

    def _open_session(self, identity: bytes, request_id: int, open_session) -> list[Output]:
        _check_id(open_session.session_id, "session_id")
        _check_id(open_session.account.id, "account.id")
        for group in open_session.group_ids:
            _check_id(group, "group_ids[]")
        session = self.routing.open_session(
            identity, open_session.session_id, open_session.account.id, open_session.group_ids
        )
        session.profile = open_session.account
        return [self._reply(identity, request_id, done=broker_pb2.Done())]

    def _close_session(self, identity: bytes, request_id: int, close_session) -> list[Output]:
        self.routing.close_session(identity, close_session.session_id)
        return [self._reply(identity, request_id, done=broker_pb2.Done())]

    def _post(self, identity: bytes, request_id: int, post) -> list[Output]:
        session = self.routing.session(identity, post.session_id)
        if session is None:
            raise UnknownSession(f"session {post.session_id!r} is not registered")
        if post.group_id not in session.groups:
            raise NotMember(f"not a member of group {post.group_id!r}")
        if not post.text.strip():
            raise BadRequest("text is blank")
        if len(post.text) > self._max_text_chars:
            raise BadRequest(f"text is over {self._max_text_chars} characters")
        seq = self._last_seq.get(post.group_id, 0) + 1
        self._last_seq[post.group_id] = seq
        ts_ms = self._wall_clock_ms()
        delivery = broker_pb2.Delivery(
            group_id=post.group_id, seq=seq, ts_ms=ts_ms, sender=session.profile, text=post.text
        )
        posted = broker_pb2.Posted(group_id=post.group_id, seq=seq, ts_ms=ts_ms)
        return [
            Publish(group_topic(post.group_id), delivery.SerializeToString()),
            self._reply(identity, request_id, posted=posted),
        ]

    def _membership_change(self, identity: bytes, request_id: int, change) -> list[Output]:
        _check_id(change.account_id, "account_id")
        _check_id(change.group.id, "group.id")
        if change.joined:
            self.routing.join(change.account_id, change.group.id)
        else:
            self.routing.leave(change.account_id, change.group.id)
        event = broker_pb2.MembershipEvent(
            account_id=change.account_id, group=change.group, joined=change.joined
        )
        return [
            Publish(CONTROL_TOPIC, event.SerializeToString()),
            self._reply(identity, request_id, done=broker_pb2.Done()),
        ]

    def _sync(self, identity: bytes, request_id: int, sync) -> list[Output]:
        if not sync.nonce:
            raise BadRequest("sync needs a nonce")
        if self._barrier.sync_requested(sync.nonce, (identity, request_id), self._monotonic()):
            return [self._reply(identity, request_id, done=broker_pb2.Done())]
        return []

    # replies ----------------------------------------------------------------

    @staticmethod
    def _reply(identity: bytes, request_id: int, **kind) -> Reply:
        reply = broker_pb2.BrokerReply(request_id=request_id, **kind)
        return Reply(identity, reply.SerializeToString())

    def _failure(self, identity: bytes, request_id: int, exc: BrokerError) -> Reply:
        failure = broker_pb2.Failure(code=exc.code, message=str(exc))
        return self._reply(identity, request_id, failure=failure)


def _check_id(value: str, name: str) -> None:
    if not value or len(value) > MAX_ID_CHARS or "\0" in value:
        raise BadRequest(f"{name} must be 1-{MAX_ID_CHARS} characters without NUL")
