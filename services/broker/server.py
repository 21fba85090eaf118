"""The ZeroMQ driver: receive, hand to the core, send what the core returns.

One thread, one poller, two sockets: ROUTER (gateways' DEALERs) and XPUB
(gateways' SUBs; XPUB rather than PUB so the subscription barrier can see
subscriptions). Subscriptions are drained before requests in each round, so a
Sync whose marker is already queued is answered without waiting a round.
After the requests of a round are drained (up to ``MAX_BATCH``), ``core.flush()``
stores every post of the round in one transaction (group commit) and only then
are their publications and acks sent: one disk flush per round, not per message.
The loop flushes once more when it stops, so nothing accepted is left unanswered.
In a cluster it then hands its groups over (BrokerCore.leave) and keeps
answering for ``hand_over_secs``: posts that were on their way are told
MOVED, not dropped with the connection, so a planned stop refuses nothing.

With CURVE (``curve``, the default outside tests), both sockets admit only
the broker's known client keys (chorus.common.curve), and every request is
handed to the core with the role of the key it came with.

Fan-out policy at the socket: each Delivery is sent once; ZeroMQ copies it to
each subscribed gateway's pipe. A gateway whose pipe is at the high-water mark
(``pub_hwm_msgs``) loses messages instead of stalling everyone else (PUB never
blocks); gateways are on the same LAN and read in a dedicated loop, so the
bound is generous.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import zmq

from chorus.common.curve import PUB_DOMAIN, ROUTER_DOMAIN, ServerCurve

from .core import BrokerCore, Publish

__all__ = ["BrokerServer", "zmq_endpoint"]

log = logging.getLogger(__name__)

MAX_BATCH = 1000  # messages drained from one socket per poll round, so neither starves
HAND_OVER_QUIET_SECS = 1.0  # after a hand-over, this long without a request and the gateways have moved on


def zmq_endpoint(endpoint: str) -> str:
    """Accept tcp://host:0 for "any free port" (ZeroMQ spells it tcp://host:*)."""
    return endpoint[:-2] + ":*" if endpoint.startswith("tcp://") and endpoint.endswith(":0") else endpoint


class BrokerServer:
    def __init__(
        self,
        core: BrokerCore,
        *,
        router_endpoint: str,
        pub_endpoint: str,
        pub_hwm_msgs: int,
        tick_secs: float,
        curve: ServerCurve | None = None,
        context: zmq.Context | None = None,
        hand_over_secs: float = 0.0,
    ) -> None:
        self.core = core
        self._hand_over_secs = hand_over_secs
        self._curve = curve
        self._tick_secs = tick_secs
        self.context = context or zmq.Context.instance()
        self.router = self.context.socket(zmq.ROUTER)
        self.router.setsockopt(zmq.ROUTER_HANDOVER, 1)  # a reconnecting gateway keeps its identity
        self.router.setsockopt(zmq.LINGER, 0)
        self.xpub = self.context.socket(zmq.XPUB)
        self.xpub.setsockopt(zmq.XPUB_VERBOSE, 1)
        self.xpub.setsockopt(zmq.SNDHWM, pub_hwm_msgs)
        self.xpub.setsockopt(zmq.LINGER, 0)
        self._router_endpoint = router_endpoint
        self._pub_endpoint = pub_endpoint
        self._authenticator = None
        if curve is not None:
            self._authenticator = curve.start_authenticator(self.context)
            curve.apply(self.router, ROUTER_DOMAIN)
            curve.apply(self.xpub, PUB_DOMAIN)

    def bind(self) -> tuple[str, str]:
        """Bind both sockets; returns the real endpoints (useful with port 0)."""
        self.router.bind(zmq_endpoint(self._router_endpoint))
        self.xpub.bind(zmq_endpoint(self._pub_endpoint))
        return (
            self.router.getsockopt_string(zmq.LAST_ENDPOINT),
            self.xpub.getsockopt_string(zmq.LAST_ENDPOINT),
        )

    def bind_internal(self, name: str) -> str:
        """Also bind the ROUTER on inproc://NAME for clients in this process (the gRPC
        Messages service); they must use ``self.context``."""
        endpoint = f"inproc://{name}"
        self.router.bind(endpoint)
        return endpoint

    def run(self, should_stop: Callable[[], bool]) -> None:
        poller = zmq.Poller()
        poller.register(self.router, zmq.POLLIN)
        poller.register(self.xpub, zmq.POLLIN)
        next_tick = time.monotonic()  # tick at once: a cluster member heartbeats before its first post
        timeout_ms = int(self._tick_secs * 1000)
        left_at = None
        while left_at is None or not self._handed_over(left_at, self.core.redirected_at):
            if left_at is None and should_stop():
                # Hand over: store what was accepted, give the groups back, tell the gateways; then
                # keep answering (MOVED) until the requests stop coming (at most hand_over_secs),
                # so requests already on their way are redirected rather than lost with the
                # connection, however long the gateways take to hear of it.
                self._send(self.core.leave())
                left_at = time.monotonic()
                continue
            ready = dict(poller.poll(timeout_ms if left_at is None else int(HAND_OVER_QUIET_SECS * 250)))
            if self.xpub in ready:
                self._drain_subscriptions()
            if self.router in ready:
                self._drain_requests()
            self._send(self.core.flush())
            if time.monotonic() >= next_tick:
                self._send(self.core.tick())
                next_tick = time.monotonic() + self._tick_secs
        self._send(self.core.flush())

    def _handed_over(self, left_at: float, redirected_at: float | None) -> bool:
        """Done redirecting: hand_over_secs are up, or no post needed redirecting for HAND_OVER_QUIET_SECS
        (heartbeats and cluster queries go on until the clients drop us: they do not count)."""
        now = time.monotonic()
        quiet_since = left_at if redirected_at is None else max(left_at, redirected_at)
        return now - left_at >= self._hand_over_secs or now - quiet_since >= min(HAND_OVER_QUIET_SECS,
                                                                                 self._hand_over_secs)

    def close(self) -> None:
        self.router.close()
        self.xpub.close()
        if self._authenticator is not None:
            self._authenticator.stop()

    def _drain_subscriptions(self) -> None:
        for _ in range(MAX_BATCH):
            try:
                message = self.xpub.recv(zmq.NOBLOCK)
            except zmq.Again:
                return
            self._send(self.core.handle_subscription(message))

    def _drain_requests(self) -> None:
        if self._curve is not None:
            return self._drain_authenticated()
        for _ in range(MAX_BATCH):
            try:
                frames = self.router.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            if len(frames) != 2:  # [identity, payload]; anything else is not ours
                log.warning("dropped a ROUTER message of %d frames", len(frames))
                continue
            self._send(self.core.handle_request(frames[0], frames[1]))

    def _drain_authenticated(self) -> None:
        """As _drain_requests, each request with the role of the CURVE key it came with."""
        for _ in range(MAX_BATCH):
            try:
                frames = self.router.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            if len(frames) != 2:
                log.warning("dropped a ROUTER message of %d frames", len(frames))
                continue
            identity, payload = frames
            try:
                role = self._curve.role_of(payload.get("User-Id"))
            except zmq.ZMQError:  # no User-Id: inproc, which only this process can open
                role = "internal"
            if role is None:  # admitted by ZAP, so known; a key removed since is refused
                role = "unknown"
            self._send(self.core.handle_request(identity.bytes, payload.bytes, role))

    def _send(self, outputs) -> None:
        for out in outputs:
            try:
                if isinstance(out, Publish):
                    self.xpub.send_multipart((out.topic, out.payload), zmq.NOBLOCK)
                else:
                    self.router.send_multipart((out.identity, out.payload), zmq.NOBLOCK)
            except zmq.Again:
                log.warning("dropped an outgoing message: peer at its high-water mark")
