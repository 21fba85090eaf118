"""Committed membership changes to EVERY broker of a cluster: one BrokerNotifier per live broker.

Every broker checks posts against its own membership table, and any broker may
come to own any group, so each one hears every change (and a snapshot when it
first meets us, as a lone broker does: broker_notifier.py).

The live brokers are asked of the seeds (and then of any known broker) every
``poll_secs`` (the ``Cluster`` request); a broker that appears gets a notifier
(whose first Welcome is fresh, so it is sent a snapshot read from the database
after the notifier was added: no change committed meanwhile is missed by it),
and one that left the cluster loses its notifier. Every change carries its
number in commit order, so a broker that hears a change twice, or hears
another membership replica's later change first, applies only the newest
(broker_pb2.MembershipChange).
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable

import zmq

from chorus.common.brokerlink import ThreadBrokerLink
from chorus.common.curve import ClientCurve
from chorus.wire.conversation import BrokerProblem
from chorus.wire.pb import broker_pb2

from .broker_notifier import DEFAULT_CLOSE_TIMEOUT_SECS, BrokerNotifier

__all__ = ["ClusterNotifier", "DEFAULT_POLL_SECS"]

log = logging.getLogger(__name__)

DEFAULT_POLL_SECS = 1.0
_ASK_TIMEOUT_SECS = 2.0


class ClusterNotifier:
    def __init__(self, seeds: list[str], make_notifier: Callable[[str], BrokerNotifier], *,
                 curve: ClientCurve | None = None, poll_secs: float = DEFAULT_POLL_SECS,
                 context: zmq.Context | None = None) -> None:
        self.seeds = list(seeds)
        self._make_notifier = make_notifier
        self._curve = curve
        self._poll_secs = poll_secs
        self._context = context or zmq.Context.instance()
        self._lock = threading.Lock()  # guards _notifiers: notify runs on the servicer's threads
        self._notifiers: dict[str, BrokerNotifier] = {}  # router endpoint -> its notifier
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._client_id = f"membership-{secrets.token_hex(6)}"

    def start(self) -> None:
        self._thread = threading.Thread(target=self._watch, name="membership-cluster", daemon=True)
        self._thread.start()

    def notify(self, account_id: str, group_id: str, group_name: str, joined: bool, *, change_id: int) -> None:
        with self._lock:
            for notifier in self._notifiers.values():
                notifier.notify(account_id, group_id, group_name, joined, change_id=change_id)

    def pending(self) -> int:
        with self._lock:
            return max((n.pending() for n in self._notifiers.values()), default=0)

    def close(self, timeout_secs: float = DEFAULT_CLOSE_TIMEOUT_SECS) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(_ASK_TIMEOUT_SECS * (len(self.seeds) + 1) + self._poll_secs)
        with self._lock:
            notifiers, self._notifiers = list(self._notifiers.values()), {}
        for notifier in notifiers:  # they flush in parallel: each close waits for its own thread
            threading.Thread(target=notifier.close, args=(timeout_secs,), daemon=True).start()
        deadline = time.monotonic() + timeout_secs + 1.0
        for notifier in notifiers:
            thread = getattr(notifier, "_thread", None)
            if thread is not None:
                thread.join(max(0.0, deadline - time.monotonic()))

    # the watcher thread ---------------------------------------------------------

    def _watch(self) -> None:
        while not self._stop.is_set():
            routers = self._live_routers()
            if routers is not None:
                self._follow(routers)
            self._stop.wait(self._poll_secs)

    def _live_routers(self) -> set[str] | None:
        with self._lock:
            known = list(self._notifiers)
        for endpoint in known + [s for s in self.seeds if s not in known]:
            link = ThreadBrokerLink(self._context, endpoint, client_id=self._client_id,
                                    timeout_secs=_ASK_TIMEOUT_SECS, curve=self._curve)
            try:
                deadline = time.monotonic() + _ASK_TIMEOUT_SECS
                if link.say_hello(deadline) is None:
                    continue
                info = link.request(deadline, "cluster", cluster=broker_pb2.ClusterQuery())
            except BrokerProblem:
                continue
            finally:
                link.close()
            if info.nodes:
                return {node.router for node in info.nodes}
        return None

    def _follow(self, routers: set[str]) -> None:
        with self._lock:
            gone = [self._notifiers.pop(r) for r in list(self._notifiers) if r not in routers]
            for router in routers - set(self._notifiers):
                notifier = self._make_notifier(router)
                try:
                    notifier.start()
                except zmq.ZMQError as exc:
                    log.error("cannot connect to the broker at %s: %s", router, exc)
                    continue
                self._notifiers[router] = notifier
                log.info("announcing membership changes to the broker at %s", router)
        for notifier in gone:
            log.info("the broker at %s left the cluster", notifier.router_endpoint)
            notifier.close(0.0)
