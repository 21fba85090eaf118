"""The client side of the broker conversation, without sockets: requests out, replies in.

Every client of the broker (the gateways, the membership notifier, the gRPC
Messages service) speaks the same protocol to the broker's ROUTER from a
DEALER: a GatewayRequest carrying a request_id, answered by a BrokerReply with
the same id. This module is that protocol, written once; the drivers in
chorus.common.brokerlink (asyncio and threads) only move its bytes.

Invariants:
- Request ids are unique within a conversation. The one exception is on
  purpose: ``resend`` sends a pending request again under its own id, so an
  answer to any attempt answers it (the notifier's at-least-once delivery).
- A reply answers the pending request with its id, once; a reply to nothing
  pending (a request given up on, or answered already) is late and dropped.
- Deadlines are data: every pending request carries one (monotonic seconds),
  ``expire(now)`` hands back those past it, and ``next_deadline()`` tells a
  driver how long it may sleep.
- Hello: ``needs_hello`` holds before the first Welcome, after an
  UNKNOWN_GATEWAY refusal (the broker forgot us: nothing was done) and after a
  request expired (the broker may have restarted). A Welcome saying ``fresh``
  means the broker did not know this client: whatever the client registered
  there (a gateway's sessions) must be registered again, so ``receive`` says
  so in its answer and ``reregistration_due`` stays true until the owner
  calls ``reregistered()``. A Welcome counts even when it comes late (its
  Hello was given up on): otherwise a broker restart could go unnoticed.
- Failures become typed errors here, in one table (``refusal``), so every
  client maps the broker's codes the same way and then to its own errors.
  The broker raises the same classes (chorus.broker.errors names them), so
  one hierarchy describes a refusal on both ends of the wire.

    BrokerProblem                  the request did not do what was asked
    +-- BrokerRefused              the broker answered Failure (``code``)
    |   +-- Malformed              BAD_REQUEST: the caller's fault, never retried
    |   +-- NotMember              NOT_MEMBER: the person is not in the group
    |   +-- UnknownSession         UNKNOWN_SESSION: register the session again
    |   +-- UnknownGateway         UNKNOWN_GATEWAY: say Hello, then retry
    |   +-- StoreUnavailable       UNAVAILABLE: nothing stored; retryable
    |   +-- NotReady               NOT_READY: the broker is still loading; nothing done, retry soon
    |   +-- Forbidden              FORBIDDEN: this client's role may not ask that
    |   +-- Moved                  MOVED: another broker owns the group (``moved_to``); nothing done
    +-- BrokerTimeout              no answer by the deadline (it may have been done)
    +-- ConnectionLost             the connection dropped while it was out (it may have been done)
    +-- BrokerUnreachable          no broker connected to send to (nothing was done)
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from google.protobuf.message import DecodeError

from chorus.wire.pb import broker_pb2

__all__ = [
    "Conversation", "Answer", "Outgoing",
    "BrokerProblem", "BrokerRefused", "Malformed", "NotMember", "UnknownSession", "UnknownGateway",
    "StoreUnavailable", "NotReady", "Forbidden", "Moved", "BrokerTimeout", "ConnectionLost", "BrokerUnreachable", "refusal",
]

_Code = broker_pb2.Failure.Code


class BrokerProblem(Exception):
    """The broker did not do what was asked, or may not have."""


class BrokerRefused(BrokerProblem):
    code: int = _Code.CODE_UNSPECIFIED


class Malformed(BrokerRefused):
    code = _Code.BAD_REQUEST


class NotMember(BrokerRefused):
    code = _Code.NOT_MEMBER


class UnknownSession(BrokerRefused):
    code = _Code.UNKNOWN_SESSION


class UnknownGateway(BrokerRefused):
    code = _Code.UNKNOWN_GATEWAY


class StoreUnavailable(BrokerRefused):
    """The message store failed; nothing was stored or sent. Retryable. Its text is for the
    person at the other end: never SQL or driver text."""

    code = _Code.UNAVAILABLE


class NotReady(BrokerRefused):
    """The broker has just started and does not know the memberships yet; nothing was done."""

    code = _Code.NOT_READY


class Forbidden(BrokerRefused):
    """The client's role (its CURVE key) may not make this request; nothing was done."""

    code = _Code.FORBIDDEN


class Moved(BrokerRefused):
    """Another broker owns the group (``moved_to``, empty when none is known yet); nothing was done."""

    code = _Code.MOVED
    moved_to = ""


class BrokerTimeout(BrokerProblem):
    """No answer in time. The broker may still have done it (a post may be stored)."""


class ConnectionLost(BrokerProblem):
    """The connection to the broker dropped while the request was out: it may have been done
    (a post may be stored). Answered at once rather than at the deadline."""


class BrokerUnreachable(BrokerProblem):
    """No broker connected: the request never left, so nothing was done."""


_REFUSALS: dict[int, type[BrokerRefused]] = {
    cls.code: cls
    for cls in (Malformed, NotMember, UnknownSession, UnknownGateway, StoreUnavailable, NotReady, Forbidden, Moved)
}


def refusal(failure: broker_pb2.Failure) -> BrokerRefused:
    """The typed error for a Failure reply; an unknown code is a refusal of the base type."""
    error = _REFUSALS.get(failure.code, BrokerRefused)(failure.message or "refused by the broker")
    error.code = failure.code
    if isinstance(error, Moved):
        error.moved_to = failure.moved_to
    return error


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One GatewayRequest ready for the DEALER."""

    request_id: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class Answer:
    """The broker's answer to a pending request: ``reply`` (the oneof field's message) or ``error``."""

    request_id: int
    kind: str
    reply: object | None = None
    error: BrokerRefused | None = None
    fresh: bool = False  # a Welcome saying the broker did not know us

    def result(self, expected: str):
        """The reply when it is of the ``expected`` kind; raises the refusal, or Malformed."""
        if self.error is not None:
            raise self.error
        if self.kind != expected:
            raise Malformed(f"the broker answered {self.kind} to a request expecting {expected}")
        return self.reply


@dataclass(slots=True)
class _Pending:
    kind: str
    deadline: float
    request: broker_pb2.GatewayRequest


class Conversation:
    def __init__(self, client_id: str, *, timeout_secs: float) -> None:
        self.client_id = client_id
        self.timeout_secs = timeout_secs
        self.broker_id: str | None = None
        self.needs_hello = True
        self.reregistration_due = False
        self.late_replies = 0
        self._ids = itertools.count(1)
        self._pending: dict[int, _Pending] = {}

    # requests -----------------------------------------------------------------

    def request(self, now: float, *, deadline: float | None = None, **kind) -> Outgoing:
        """A new request, e.g. ``request(now, post=broker_pb2.Post(...))``; pending until answered."""
        [(name, message)] = kind.items()
        request_id = next(self._ids)
        request = broker_pb2.GatewayRequest(request_id=request_id, **{name: message})
        self._pending[request_id] = _Pending(name, self._deadline(now, deadline), request)
        return Outgoing(request_id, request.SerializeToString())

    def hello_message(self) -> broker_pb2.Hello:
        return broker_pb2.Hello(gateway_id=self.client_id)

    def hello(self, now: float, *, deadline: float | None = None) -> Outgoing:
        return self.request(now, deadline=deadline, hello=self.hello_message())

    def resend(self, request_id: int, now: float, *, deadline: float | None = None) -> Outgoing:
        """The pending request ``request_id`` again, same id, with a new deadline."""
        pending = self._pending[request_id]
        pending.deadline = self._deadline(now, deadline)
        return Outgoing(request_id, pending.request.SerializeToString())

    def forget(self, request_id: int) -> None:
        """Stop waiting for ``request_id`` (given up on); its answer, if any, will be late."""
        self._pending.pop(request_id, None)

    def is_pending(self, request_id: int) -> bool:
        return request_id in self._pending

    # replies and time -----------------------------------------------------------

    def receive(self, payload: bytes) -> Answer | None:
        """The answer ``payload`` carries, or None for a late or unreadable reply."""
        reply = broker_pb2.BrokerReply()
        try:
            reply.ParseFromString(payload)
        except DecodeError:
            self.late_replies += 1
            return None
        pending = self._pending.pop(reply.request_id, None)
        kind = reply.WhichOneof("kind")
        if kind == "welcome":
            # Even late: a Welcome saying fresh means the broker has forgotten what we registered
            # there, whoever still waits for this answer; dropping it would leave that unknown.
            self.needs_hello = False
            self.broker_id = reply.welcome.broker_id
            self.reregistration_due = self.reregistration_due or reply.welcome.fresh
        if pending is None or kind is None:
            self.late_replies += 1
            return None
        if kind == "failure":
            error = refusal(reply.failure)
            if isinstance(error, UnknownGateway):
                self.needs_hello = True
            return Answer(reply.request_id, kind, error=error)
        fresh = kind == "welcome" and reply.welcome.fresh
        return Answer(reply.request_id, kind, reply=getattr(reply, kind), fresh=fresh)

    def expire(self, now: float) -> list[int]:
        """The ids of requests past their deadline, no longer pending. Any expiry means the
        broker may have restarted meanwhile, so the next request says Hello first."""
        expired = [rid for rid, pending in self._pending.items() if pending.deadline <= now]
        for rid in expired:
            del self._pending[rid]
        if expired:
            self.needs_hello = True
        return expired

    def next_deadline(self) -> float | None:
        return min((p.deadline for p in self._pending.values()), default=None)

    def reregistered(self) -> None:
        """The owner has registered again what a fresh broker forgot."""
        self.reregistration_due = False

    def _deadline(self, now: float, deadline: float | None) -> float:
        return now + self.timeout_secs if deadline is None else deadline
