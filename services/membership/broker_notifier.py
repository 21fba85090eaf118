"""Tells the broker about committed membership changes, so live sessions follow them.

The broker keeps a routing table of who is in which group (see
docs/architecture.md). Changes made through webgate reach it from webgate;
changes made by any other backend through this service reach it from here.

Invariants:
- ``notify`` never blocks and never raises: it appends to a bounded in-memory
  outbox under a lock and wakes the sender thread. A gRPC call is never held
  up, or failed, because the broker is slow or down.
- ONE thread owns the ONE ZeroMQ DEALER (sockets are not thread-safe; the
  servicer runs on many threads). It is created and connected in ``start``, so
  a bad endpoint fails there, and is used only by that thread afterwards.
- Changes leave in the order they were notified, one at a time: the next is
  sent only after the broker answered ``Done`` for the previous one. So the
  changes of one account (of every account) reach the broker in commit order,
  given that callers notify in commit order (the servicer guarantees that).
- Delivery is at least once. A change stays at the head of the outbox until
  the broker answers it; a timeout or an absent broker means "try again". A
  retry first says Hello and resends the change only once the Hello is
  answered; every attempt for one change reuses its request_id, and an answer
  to an earlier attempt that arrives meanwhile counts. So a stalled broker is
  not handed the same change over and over; a duplicate needs a reply lost
  twice over, and the broker applies a repeated change as a no-op in its
  routing table and republishes the event, which gateways skip for sessions
  already in (or out of) the group.
- Nothing is dropped silently: a full outbox, a change the broker refuses as
  malformed, and whatever is left at ``close`` are each logged as an error
  naming the account and the group.

Retry policy, written down because it is deliberately simple (no retry library
is installed, and we do not hand-write backoff): one request in flight; wait
for its reply up to ``reply_timeout_secs``; on timeout, or when the DEALER has
no connected broker (``IMMEDIATE`` makes the send fail at once instead of
queueing for an absent peer), pause ``retry_pause_secs`` and try the same change
again. The pause is fixed, not growing: there is one connection to one broker,
and the attempts are cheap. While the broker is away the outbox fills; past
``max_queued_changes`` new changes are refused (logged).

The DEALER says ``Hello`` before its first request, after any failed attempt
(the broker may have restarted and forgotten us), when the broker answers
``UNKNOWN_GATEWAY``, and every ``heartbeat_secs`` while idle, so the broker does
not expire us as a silent gateway.

Throughput is one change per broker round trip (well under a millisecond on a
LAN), far above the rate people join and leave groups.
"""

from __future__ import annotations

import enum
import itertools
import logging
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Protocol

import zmq
from google.protobuf.message import DecodeError

from chorus.wire.pb import broker_pb2

__all__ = [
    "DEFAULT_CLOSE_TIMEOUT_SECS",
    "DEFAULT_HEARTBEAT_SECS",
    "DEFAULT_MAX_QUEUED_CHANGES",
    "DEFAULT_REPLY_TIMEOUT_SECS",
    "DEFAULT_RETRY_PAUSE_SECS",
    "BrokerNotifier",
    "Change",
    "Notifier",
    "NullNotifier",
]

log = logging.getLogger(__name__)

DEFAULT_MAX_QUEUED_CHANGES = 10_000
DEFAULT_REPLY_TIMEOUT_SECS = 1.0
DEFAULT_RETRY_PAUSE_SECS = 0.2
DEFAULT_HEARTBEAT_SECS = 3.0  # well inside the broker's default 10 s gateway timeout
DEFAULT_CLOSE_TIMEOUT_SECS = 2.0


@dataclass(frozen=True, slots=True)
class Change:
    """One committed membership change, as the broker will hear it."""

    account_id: str
    group_id: str
    group_name: str
    joined: bool

    def __str__(self) -> str:
        verb = "joined" if self.joined else "left"
        return f"account {self.account_id} {verb} group {self.group_id} ({self.group_name!r})"


class Notifier(Protocol):
    """What the servicer needs: hand over a committed change; stop at shutdown."""

    def notify(self, account_id: str, group_id: str, group_name: str, joined: bool) -> None: ...

    def close(self, timeout_secs: float = DEFAULT_CLOSE_TIMEOUT_SECS) -> None: ...


class NullNotifier:
    """No broker configured (standalone use, tests): changes are not announced anywhere."""

    def notify(self, account_id: str, group_id: str, group_name: str, joined: bool) -> None:
        pass

    def close(self, timeout_secs: float = DEFAULT_CLOSE_TIMEOUT_SECS) -> None:
        pass


class _Outcome(enum.Enum):
    DONE = "done"          # the broker applied it: take it off the outbox
    REFUSED = "refused"    # the broker can never apply it: log, take it off
    RETRY = "retry"        # try the same change again after a pause
    REHELLO = "rehello"    # say Hello, then try again at once


# Failure codes -> what to do with the change. Anything not listed is transient.
_ON_FAILURE: dict[int, _Outcome] = {
    broker_pb2.Failure.BAD_REQUEST: _Outcome.REFUSED,
    broker_pb2.Failure.UNKNOWN_GATEWAY: _Outcome.REHELLO,
}


def _outcome(reply: broker_pb2.BrokerReply | None) -> _Outcome:
    """The decision for one attempt's reply (None: no reply in time, or no broker connected)."""
    if reply is None:
        return _Outcome.RETRY
    kind = reply.WhichOneof("kind")
    if kind == "done":
        return _Outcome.DONE
    if kind == "failure":
        return _ON_FAILURE.get(reply.failure.code, _Outcome.RETRY)
    return _Outcome.RETRY  # an answer of the wrong kind: the broker is not what we expect; keep trying


class BrokerNotifier:
    """Sends each notified change to the broker's ROUTER as a ``MembershipChange`` (see module doc).

    ``start()`` connects and starts the thread; ``close()`` flushes what it can within its deadline.
    """

    def __init__(
        self,
        router_endpoint: str,
        *,
        max_queued_changes: int = DEFAULT_MAX_QUEUED_CHANGES,
        reply_timeout_secs: float = DEFAULT_REPLY_TIMEOUT_SECS,
        retry_pause_secs: float = DEFAULT_RETRY_PAUSE_SECS,
        heartbeat_secs: float = DEFAULT_HEARTBEAT_SECS,
        gateway_id: str | None = None,
        context: zmq.Context | None = None,
    ) -> None:
        if max_queued_changes < 1:
            raise ValueError(f"max_queued_changes must be >= 1, got {max_queued_changes}")
        self.router_endpoint = router_endpoint
        self.gateway_id = gateway_id or f"membership-{secrets.token_hex(6)}"
        self._max_queued_changes = max_queued_changes
        self._reply_timeout_secs = reply_timeout_secs
        self._retry_pause_secs = retry_pause_secs
        self._heartbeat_secs = heartbeat_secs
        self._context = context or zmq.Context.instance()
        self._wakeup = threading.Condition()
        # Guarded by _wakeup: the outbox, and when to give up flushing (set by close).
        self._outbox: deque[tuple[int, Change]] = deque()
        self._stop_at: float | None = None
        self._request_ids = itertools.count(1)  # the sender thread and notify() both draw; next() is atomic
        self._dealer: zmq.Socket | None = None
        self._thread: threading.Thread | None = None
        self._welcomed = False  # sender thread only: the broker has answered our Hello
        self._failing = False  # sender thread only: the last attempt was not confirmed
        self._head_id: int | None = None  # sender thread only: request_id of the change being delivered
        self._head_answer: broker_pb2.BrokerReply | None = None  # its answer, if it came in late

    # any thread -------------------------------------------------------------

    def start(self) -> None:
        """Connect the DEALER and start the sender thread; zmq.ZMQError for an unusable endpoint."""
        dealer = self._context.socket(zmq.DEALER)
        try:
            dealer.setsockopt(zmq.ROUTING_ID, self.gateway_id.encode())
            dealer.setsockopt(zmq.IMMEDIATE, 1)  # no queueing for an absent broker: we retry ourselves
            dealer.setsockopt(zmq.LINGER, 0)
            dealer.connect(self.router_endpoint)
        except zmq.ZMQError:
            dealer.close()
            raise
        self._dealer = dealer
        # Thread start is a full memory barrier, which is what handing a socket to another thread needs.
        self._thread = threading.Thread(target=self._run, name="membership-broker-notifier", daemon=True)
        self._thread.start()

    def notify(self, account_id: str, group_id: str, group_name: str, joined: bool) -> None:
        change = Change(account_id, group_id, group_name, joined)
        with self._wakeup:
            if self._stop_at is not None:
                log.error("broker notifier closed; live sessions will not hear that %s", change)
                return
            if len(self._outbox) >= self._max_queued_changes:
                log.error("broker notifier outbox full (%d changes; is the broker at %s up?); "
                          "live sessions will not hear that %s",
                          self._max_queued_changes, self.router_endpoint, change)
                return
            self._outbox.append((next(self._request_ids), change))
            self._wakeup.notify()

    def pending(self) -> int:
        """How many changes the broker has not yet confirmed."""
        with self._wakeup:
            return len(self._outbox)

    def close(self, timeout_secs: float = DEFAULT_CLOSE_TIMEOUT_SECS) -> None:
        """Refuse new changes, deliver queued ones for up to ``timeout_secs``, log any left, stop."""
        with self._wakeup:
            if self._stop_at is None:
                self._stop_at = time.monotonic() + timeout_secs
            self._wakeup.notify()
        if self._thread is not None:
            # The thread itself stops by _stop_at; the margin covers one last recv and socket close.
            self._thread.join(timeout_secs + 1.0)
            if self._thread.is_alive():
                log.error("broker notifier thread did not stop within %.1fs", timeout_secs + 1.0)
                return
        else:
            self._log_undelivered()  # never started: whatever was notified never left

    # sender thread ----------------------------------------------------------

    def _run(self) -> None:
        try:
            while True:
                with self._wakeup:
                    self._wakeup.wait_for(lambda: self._outbox or self._stop_at is not None,
                                          timeout=self._heartbeat_secs)
                    head = self._outbox[0] if self._outbox else None
                    stop_at = self._stop_at
                if stop_at is not None and (head is None or time.monotonic() >= stop_at):
                    return
                if head is None:
                    self._hello(deadline=time.monotonic() + self._reply_timeout_secs)
                    continue
                self._attempt(*head)
        except Exception:
            log.exception("broker notifier thread failed")
        finally:
            self._log_undelivered()
            self._dealer.close(linger=0)

    def _attempt(self, request_id: int, change: Change) -> None:
        """Try to get the head of the outbox confirmed once, and act on the answer."""
        deadline = self._deadline()
        had_welcome = self._welcomed
        self._head_id, self._head_answer = request_id, None
        if not had_welcome and not self._hello(deadline):
            self._failed(change)
            return
        reply = self._head_answer  # a late answer to an earlier attempt, read while waiting for Welcome
        if reply is None:
            request = broker_pb2.GatewayRequest(
                request_id=request_id,
                membership_change=broker_pb2.MembershipChange(
                    account_id=change.account_id,
                    group=broker_pb2.GroupRef(id=change.group_id, name=change.group_name),
                    joined=change.joined,
                ),
            )
            reply = self._request(request, deadline)
        outcome = _outcome(reply)
        if outcome is _Outcome.REFUSED:
            log.error("broker refused %s: %s", change, reply.failure.message)
        if outcome in (_Outcome.DONE, _Outcome.REFUSED):
            with self._wakeup:
                self._outbox.popleft()  # only this thread removes, so the head is still ours
            if self._failing:
                log.info("broker at %s is confirming membership changes again", self.router_endpoint)
                self._failing = False
            return
        # No confirmation: the broker may have restarted, expired us, or be stalled. The next
        # attempt says Hello first and resends only once that is answered, so a stalled broker
        # is not handed the same change again and again.
        self._welcomed = False
        if outcome is _Outcome.RETRY or not had_welcome:
            # A broker that forgot us right after welcoming us is not forgetting a stale Hello: pause.
            self._failed(change)

    def _failed(self, change: Change) -> None:
        """Warn once per outage (not per attempt), then pause before the next attempt."""
        if not self._failing:
            log.warning("broker at %s is not confirming membership changes (first: %s); "
                        "retrying every %.1fs", self.router_endpoint, change, self._retry_pause_secs)
            self._failing = True
        self._pause()

    def _hello(self, deadline: float) -> bool:
        request = broker_pb2.GatewayRequest(request_id=next(self._request_ids),
                                            hello=broker_pb2.Hello(gateway_id=self.gateway_id))
        reply = self._request(request, deadline)
        self._welcomed = reply is not None and reply.WhichOneof("kind") == "welcome"
        if self._welcomed and reply.welcome.fresh:
            log.info("membership notifier %s registered with broker %s at %s",
                     self.gateway_id, reply.welcome.broker_id, self.router_endpoint)
        return self._welcomed

    def _request(self, request: broker_pb2.GatewayRequest, deadline: float) -> broker_pb2.BrokerReply | None:
        """Send ``request``; its reply, or None when no broker is connected or none answered by ``deadline``.

        Replies to other request ids are late answers to earlier attempts: the one for the head
        of the outbox is kept in ``_head_answer``, the others are dropped.
        """
        try:
            self._dealer.send(request.SerializeToString(), zmq.NOBLOCK)
        except zmq.Again:
            return None  # IMMEDIATE: no broker connected right now
        while (left := deadline - time.monotonic()) > 0:
            if not self._dealer.poll(max(1, int(left * 1000)), zmq.POLLIN):
                break
            reply = broker_pb2.BrokerReply()
            try:
                reply.ParseFromString(self._dealer.recv(zmq.NOBLOCK))
            except zmq.Again:
                continue
            except DecodeError:
                log.warning("dropped an unparsable broker reply")
                continue
            if reply.request_id == request.request_id:
                return reply
            if reply.request_id == self._head_id:
                self._head_answer = reply
        return None

    def _deadline(self) -> float:
        deadline = time.monotonic() + self._reply_timeout_secs
        with self._wakeup:
            return deadline if self._stop_at is None else min(deadline, self._stop_at)

    def _pause(self) -> None:
        """Wait ``retry_pause_secs`` before the next attempt, or less if close()'s deadline comes first."""
        with self._wakeup:
            stop_at = self._stop_at
        wait = self._retry_pause_secs if stop_at is None else min(self._retry_pause_secs,
                                                                  stop_at - time.monotonic())
        if wait > 0:
            time.sleep(wait)

    def _log_undelivered(self) -> None:
        with self._wakeup:
            left = list(self._outbox)
            self._outbox.clear()
        for _, change in left:
            log.error("broker at %s never confirmed; live sessions will not hear that %s",
                      self.router_endpoint, change)
