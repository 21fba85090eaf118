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
  sent only after the broker answered ``Done`` for the previous one. Commit
  order is not this thread's to keep: each change carries the number the
  database gave it (storage.py), and the broker applies a change only if it
  is newer than what it holds for that (account, group). So changes from
  several threads, or several membership processes, reach the same state.
- Delivery is at least once. A change stays at the head of the outbox until
  the broker answers it; a timeout or an absent broker means "try again". A
  retry first says Hello and resends the change only once the Hello is
  answered; every attempt for one change reuses its request_id, and an answer
  to an earlier attempt that arrives meanwhile counts. So a stalled broker is
  not handed the same change over and over; a duplicate needs a reply lost
  twice over, and the broker answers a repeated change Done and changes
  nothing (its number is not newer than the one it holds).
- Nothing is dropped silently: a full outbox, a change the broker refuses as
  malformed, and whatever is left at ``close`` are each logged as an error
  naming the account and the group.

Retry policy, as data (a tenacity policy in ``_deliver``): one request in
flight; wait for its reply up to ``reply_timeout_secs``; on timeout, or when
the DEALER has no connected broker (``IMMEDIATE`` makes the send fail at once
instead of queueing for an absent peer), pause ``retry_pause_secs`` and try
the same change again. The pause is fixed, not growing: there is one
connection to one broker, and the attempts are cheap. While the broker is away
the outbox fills; past ``max_queued_changes`` new changes are refused (logged).

The protocol itself (request ids, Hello/Welcome, what each Failure means) is
chorus.wire.conversation, driven by chorus.common.brokerlink.ThreadBrokerLink.
The link says ``Hello`` before its first request, after any failed attempt
(the broker may have restarted and forgotten us), when the broker answers
``UNKNOWN_GATEWAY``, and every ``heartbeat_secs`` while idle, so the broker does
not expire us as a silent client.

The broker checks every post against its own membership table, which only
this notifier feeds: when a Welcome says ``fresh`` (the broker does not know
us: first contact, or it restarted), the sender thread first sends every
(account, group) pair's newest numbered change as a snapshot
(``snapshot_source`` pages through the store, in pages of
``snapshot_page_size``; each page is confirmed like a change), then goes on
with the outbox. The thread says Hello as soon as it starts, so a
broker gets its table right away.

Throughput is one change per broker round trip (well under a millisecond on a
LAN), far above the rate people join and leave groups.
"""

from __future__ import annotations

import enum
import logging
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import zmq
from tenacity import Retrying, RetryCallState, retry_if_exception_type

from chorus.common.brokerlink import ThreadBrokerLink
from chorus.common.curve import ClientCurve
from chorus.wire.conversation import Answer, BrokerUnreachable, Malformed, UnknownGateway
from chorus.wire.pb import broker_pb2

from .storage import LastChange

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
DEFAULT_HEARTBEAT_SECS = 1.0  # a restarted broker gets its snapshot within about this
DEFAULT_CLOSE_TIMEOUT_SECS = 2.0
DEFAULT_SNAPSHOT_PAGE_SIZE = 5000  # memberships per MembershipSnapshot page

# (after (group_id, account_id) or None, limit) -> the next pairs' newest changes in key order
SnapshotSource = Callable[[tuple[str, str] | None, int], list[LastChange]]


@dataclass(frozen=True, slots=True)
class Change:
    """One committed membership change, as the broker will hear it."""

    account_id: str
    group_id: str
    group_name: str
    joined: bool
    change_id: int  # its number in commit order (storage.py)

    def __str__(self) -> str:
        verb = "joined" if self.joined else "left"
        return f"account {self.account_id} {verb} group {self.group_id} ({self.group_name!r}), change {self.change_id}"

    def message(self) -> broker_pb2.MembershipChange:
        return broker_pb2.MembershipChange(account_id=self.account_id, joined=self.joined, change_id=self.change_id,
                                           group=broker_pb2.GroupRef(id=self.group_id, name=self.group_name))


class Notifier(Protocol):
    """What the servicer needs: hand over a committed change; stop at shutdown."""

    def notify(self, account_id: str, group_id: str, group_name: str, joined: bool, *, change_id: int) -> None: ...

    def close(self, timeout_secs: float = DEFAULT_CLOSE_TIMEOUT_SECS) -> None: ...


class NullNotifier:
    """No broker configured (standalone use, tests): changes are not announced anywhere."""

    def notify(self, account_id: str, group_id: str, group_name: str, joined: bool, *, change_id: int) -> None:
        pass

    def close(self, timeout_secs: float = DEFAULT_CLOSE_TIMEOUT_SECS) -> None:
        pass


class _Outcome(enum.Enum):
    DONE = "done"          # the broker applied it: take it off the outbox
    REFUSED = "refused"    # the broker can never apply it: log, take it off
    RETRY = "retry"        # try the same change again after a pause
    REHELLO = "rehello"    # say Hello, then try again at once


def _outcome(answer: Answer | None) -> _Outcome:
    """The decision for one attempt's answer (None: no answer in time, or no broker connected)."""
    if answer is None:
        return _Outcome.RETRY
    if answer.kind == "done":
        return _Outcome.DONE
    if isinstance(answer.error, Malformed):
        return _Outcome.REFUSED
    if isinstance(answer.error, UnknownGateway):
        return _Outcome.REHELLO
    return _Outcome.RETRY  # transient refusals, and answers of the wrong kind: keep trying


class _NotConfirmed(Exception):
    """This attempt did not get the change confirmed; ``pause`` before the next one or not."""

    def __init__(self, pause: bool) -> None:
        super().__init__("not confirmed")
        self.pause = pause


@dataclass(slots=True)
class _Delivery:
    """One request to get confirmed: a change, or a page of the membership snapshot."""

    what: object          # for the logs: the Change, or a description of the page
    kind: dict            # the GatewayRequest field, e.g. {"membership_change": ...}
    request_id: int | None = None  # every attempt reuses it


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
        snapshot_source: SnapshotSource | None = None,
        snapshot_page_size: int = DEFAULT_SNAPSHOT_PAGE_SIZE,
        curve: ClientCurve | None = None,
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
        self._snapshot_source = snapshot_source
        self._snapshot_page_size = snapshot_page_size
        self._curve = curve
        self._wakeup = threading.Condition()
        # Guarded by _wakeup: the outbox, and when to give up flushing (set by close).
        self._outbox: deque[Change] = deque()
        self._stop_at: float | None = None
        self._link: ThreadBrokerLink | None = None  # the sender thread's alone once started
        self._thread: threading.Thread | None = None
        self._failing = False  # sender thread only: the last attempt was not confirmed

    # any thread -------------------------------------------------------------

    def start(self) -> None:
        """Connect the DEALER and start the sender thread; zmq.ZMQError for an unusable endpoint."""
        self._link = ThreadBrokerLink(self._context, self.router_endpoint, client_id=self.gateway_id,
                                      timeout_secs=self._reply_timeout_secs, curve=self._curve)
        # Thread start is a full memory barrier, which is what handing a socket to another thread needs.
        self._thread = threading.Thread(target=self._run, name="membership-broker-notifier", daemon=True)
        self._thread.start()

    def notify(self, account_id: str, group_id: str, group_name: str, joined: bool, *, change_id: int) -> None:
        change = Change(account_id, group_id, group_name, joined, change_id)
        with self._wakeup:
            if self._stop_at is not None:
                log.error("broker notifier closed; live sessions will not hear that %s", change)
                return
            if len(self._outbox) >= self._max_queued_changes:
                log.error("broker notifier outbox full (%d changes; is the broker at %s up?); "
                          "live sessions will not hear that %s",
                          self._max_queued_changes, self.router_endpoint, change)
                return
            self._outbox.append(change)
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
            idle_secs = 0.0  # say Hello at once when starting: the broker may want a snapshot
            while True:
                with self._wakeup:
                    self._wakeup.wait_for(lambda: self._outbox or self._stop_at is not None, timeout=idle_secs)
                    idle_secs = self._heartbeat_secs
                    head = self._outbox[0] if self._outbox else None
                    stop_at = self._stop_at
                if stop_at is not None and (head is None or time.monotonic() >= stop_at):
                    return
                if head is None or self._link.conversation.needs_hello:
                    self._hello(self._deadline())
                if self._snapshot_source is not None and self._link.conversation.reregistration_due:
                    self._send_snapshot()
                    continue
                if head is not None and self._deliver(_Delivery(head, {"membership_change": head.message()})):
                    with self._wakeup:
                        self._outbox.popleft()  # only this thread removes, so the head is still ours
        except Exception:
            log.exception("broker notifier thread failed")
        finally:
            self._log_undelivered()
            self._link.close()

    def _deliver(self, delivery: _Delivery) -> bool:
        """Attempt until the broker confirms (or refuses) ``delivery``, or close()'s deadline
        passes (False)."""
        retrying = Retrying(
            retry=retry_if_exception_type(_NotConfirmed),
            wait=self._wait_after,
            stop=lambda _state: self._closing_deadline_passed(),
            sleep=self._pause,
            retry_error_callback=lambda _state: False,  # stopping: a change stays, and is logged
        )
        return retrying(self._attempt, delivery)

    def _attempt(self, delivery: _Delivery) -> bool:
        """Try to get ``delivery`` confirmed once: True, or _NotConfirmed when it was not."""
        link = self._link
        deadline = self._deadline()
        had_welcome = not link.conversation.needs_hello
        if not had_welcome and not self._hello(deadline):
            self._failed(delivery.what)
            raise _NotConfirmed(pause=True)
        # A late answer to an earlier attempt, read while waiting for Welcome, counts.
        answer = link.take_answer(delivery.request_id) if delivery.request_id is not None else None
        if answer is None:
            try:
                if delivery.request_id is not None and link.conversation.is_pending(delivery.request_id):
                    link.resubmit(delivery.request_id, deadline)
                else:
                    delivery.request_id = link.submit(deadline, **delivery.kind)
            except BrokerUnreachable:
                self._failed(delivery.what)
                raise _NotConfirmed(pause=True) from None
            answer = link.wait(delivery.request_id, deadline)
        outcome = _outcome(answer)
        if outcome is _Outcome.REFUSED:
            log.error("broker refused %s: %s", delivery.what, answer.error)
        if outcome in (_Outcome.DONE, _Outcome.REFUSED):
            link.forget(delivery.request_id)
            if self._failing:
                log.info("broker at %s is confirming membership changes again", self.router_endpoint)
                self._failing = False
            return True
        # No confirmation: the broker may have restarted, expired us, or be stalled. The next
        # attempt says Hello first and resends only once that is answered, so a stalled broker
        # is not handed the same change again and again.
        link.conversation.needs_hello = True
        # A broker that forgot us right after welcoming us is not forgetting a stale Hello: pause.
        pause = outcome is _Outcome.RETRY or not had_welcome
        if pause:
            self._failed(delivery.what)
        raise _NotConfirmed(pause)

    def _send_snapshot(self) -> None:
        """Every membership, in pages, to a broker that does not know us (see the module doc).

        Marked done before it starts: a broker that restarts while the pages go out says
        ``fresh`` again, and the next round starts a new snapshot (the pages that reached the
        new broker without their first page are ignored there)."""
        self._link.conversation.reregistered()
        snapshot_id = secrets.randbits(63)
        after, first, sent = None, True, 0
        while True:
            try:
                rows = self._snapshot_source(after, self._snapshot_page_size)
            except Exception:
                log.exception("reading the membership snapshot failed; trying again")
                self._link.conversation.reregistration_due = True
                self._pause(self._retry_pause_secs)
                return
            last = len(rows) < self._snapshot_page_size
            groups: dict[str, list[broker_pb2.LastChange]] = {}
            for row in rows:
                groups.setdefault(row.group_id, []).append(
                    broker_pb2.LastChange(account_id=row.account_id, joined=row.joined, change_id=row.change_id))
            page = broker_pb2.MembershipSnapshot(
                snapshot_id=snapshot_id, first=first, last=last,
                groups=[broker_pb2.GroupChanges(group_id=g, changes=c) for g, c in groups.items()])
            if not self._deliver(_Delivery(f"a membership snapshot page ({len(rows)} pairs)",
                                           {"membership_snapshot": page})):
                return  # stopping
            sent += len(rows)
            if last:
                log.info("sent the broker at %s every pair's newest change (%d)", self.router_endpoint, sent)
                return
            after, first = (rows[-1].group_id, rows[-1].account_id), False

    def _wait_after(self, state: RetryCallState) -> float:
        return self._retry_pause_secs if state.outcome.exception().pause else 0.0

    def _failed(self, change: object) -> None:
        """Warn once per outage (not per attempt)."""
        if not self._failing:
            log.warning("broker at %s is not confirming membership changes (first: %s); "
                        "retrying every %.1fs", self.router_endpoint, change, self._retry_pause_secs)
            self._failing = True

    def _hello(self, deadline: float) -> bool:
        welcome = self._link.say_hello(deadline)
        if welcome is not None and welcome.fresh:
            log.info("membership notifier %s registered with broker %s at %s",
                     self.gateway_id, welcome.reply.broker_id, self.router_endpoint)
        return welcome is not None

    def _deadline(self) -> float:
        deadline = time.monotonic() + self._reply_timeout_secs
        with self._wakeup:
            return deadline if self._stop_at is None else min(deadline, self._stop_at)

    def _closing_deadline_passed(self) -> bool:
        with self._wakeup:
            return self._stop_at is not None and time.monotonic() >= self._stop_at

    def _pause(self, secs: float) -> None:
        """Sleep ``secs`` before the next attempt, or less if close()'s deadline comes first."""
        with self._wakeup:
            stop_at = self._stop_at
        wait = secs if stop_at is None else min(secs, stop_at - time.monotonic())
        if wait > 0:
            time.sleep(wait)

    def _log_undelivered(self) -> None:
        with self._wakeup:
            left = list(self._outbox)
            self._outbox.clear()
        for change in left:
            log.error("broker at %s never confirmed; live sessions will not hear that %s",
                      self.router_endpoint, change)
