"""The gateway's listening socket: every connection passes the Gate (admission.py) at accept
and must send each request head within the header deadline, before aiohttp sees a byte of it.

aiohttp's server has no header deadline (its ``keepalive_timeout`` closes idle keep-alive
connections, which we use), so each accepted connection gets a ``GuardedConnection``: an
asyncio protocol in front of aiohttp's own request handler that

- asks the gate first: a refused connection is answered with a fixed 429 or 503 JSON error
  at once (then a FIN; its bytes are read and dropped for at most REFUSAL_LINGER_SECS, so
  the answer is not lost to a reset) and no aiohttp handler is ever made for it; one that
  cannot even be answered is dropped;
- forwards everything else to the aiohttp handler unchanged, and aborts the connection when
  its request head is not complete by the deadline. ``track_requests`` (a middleware) tells
  it when a head is complete and when the answer is given; HTTP is never parsed here.

``GuardedSite`` is a TCP site of an aiohttp runner whose connections are made this way.
"""

from __future__ import annotations

import asyncio
import logging

import orjson
from aiohttp import web

from chorus.common.config import join_host_port

from .admission import Gate, HeadDeadline, Refusal, Ticket
from .security import SECURITY_HEADERS

__all__ = ["ConnectionGuard", "GuardedConnection", "GuardedSite", "track_requests", "REFUSAL_LINGER_SECS"]

log = logging.getLogger(__name__)

REFUSAL_LINGER_SECS = 1.0  # how long a refused connection may take to send its request or go
LISTEN_BACKLOG = 1024  # accepted-but-not-yet-taken connections the kernel queues (capped by somaxconn)
REPORT_EVERY_SECS = 10.0  # refusals and cuts are logged as counts, at most this often


class ConnectionGuard:
    """What every GuardedConnection shares: the gate, the header deadline, who is exempt."""

    def __init__(self, gate: Gate, *, header_timeout_secs: float, is_exempt) -> None:
        self.gate = gate
        self.header_timeout_secs = header_timeout_secs
        self.is_exempt = is_exempt  # peer address -> True for a trusted reverse proxy
        self._answers = {id(r): _http_answer(r) for r in (gate.full, gate.crowded)}
        self._counts: dict[str, int] = {}
        self._report: asyncio.TimerHandle | None = None

    def answer(self, refusal: Refusal) -> bytes:
        return self._answers[id(refusal)]

    def note(self, what: str) -> None:
        """Count a refusal or a cut; the counts are logged REPORT_EVERY_SECS after the first
        (one line, however many: a flood must not flood the log too)."""
        self._counts[what] = self._counts.get(what, 0) + 1
        if self._report is None:
            self._report = asyncio.get_running_loop().call_later(REPORT_EVERY_SECS, self._log_counts)

    def _log_counts(self) -> None:
        counts = ", ".join(f"{n} {kind}" for kind, n in sorted(self._counts.items()))
        log.warning("connection limits in the last %g s: %s; serving %d connections",
                    REPORT_EVERY_SECS, counts, self.gate.served)
        self._counts.clear()
        self._report = None


class GuardedConnection(asyncio.Protocol):
    """One accepted connection: the gate's decision, then aiohttp's handler under a head deadline."""

    def __init__(self, make_handler, guard: ConnectionGuard) -> None:
        self._make_handler = make_handler
        self._guard = guard
        self._loop = asyncio.get_running_loop()
        self._inner: asyncio.Protocol | None = None
        self._transport: asyncio.Transport | None = None
        self._ticket: Ticket | None = None
        self._refused = False
        self._head: HeadDeadline | None = None
        self._timer: asyncio.TimerHandle | None = None

    # the gate ------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        guard = self._guard
        peer = _peer(transport)
        verdict = guard.gate.open(peer, exempt=guard.is_exempt(peer))
        if isinstance(verdict, Ticket):
            self._ticket = verdict
            self._head = HeadDeadline(guard.header_timeout_secs, self._loop.time())
            self._arm()
            self._inner = self._make_handler()
            self._inner.connection_made(transport)
        elif verdict is None:
            guard.note("dropped unanswered (too many refusals at once)")
            transport.abort()
        else:
            self._refused = True
            guard.note(f"refused {verdict.status}")
            transport.write(guard.answer(verdict))
            if transport.can_write_eof():
                transport.write_eof()
            self._timer = self._loop.call_later(REFUSAL_LINGER_SECS, transport.abort)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._ticket is not None:
            self._guard.gate.close(self._ticket)
        elif self._refused:
            self._refused = False
            self._guard.gate.refused()
        if self._inner is not None:
            self._inner.connection_lost(exc)

    # bytes ---------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self._inner is None:  # refused: its request is read, so closing now sends no reset
            if self._transport is not None:
                self._transport.close()
            return
        if self._head.data(self._loop.time()):
            self._arm()
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        if self._inner is None:
            return False  # close
        return self._inner.eof_received()

    def pause_writing(self) -> None:
        if self._inner is not None:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._inner is not None:
            self._inner.resume_writing()

    # the head deadline ---------------------------------------------------------------

    def head_received(self) -> None:
        self._head.head_received()
        self._disarm()

    def answered(self) -> None:
        self._head.answered()
        self._disarm()

    def _arm(self) -> None:
        self._disarm()
        self._timer = self._loop.call_at(self._head.deadline, self._check_deadline)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _check_deadline(self) -> None:
        self._timer = None
        if self._head.expired(self._loop.time()) and self._transport is not None:
            self._guard.note(f"cut (no complete request head within {self._guard.header_timeout_secs:g} s)")
            self._transport.abort()


@web.middleware
async def track_requests(request: web.Request, handler):
    """Tell the connection a request head is complete (its deadline stops) and, once the
    handler is done (a WebSocket's whole life), that it is answered."""
    transport = request.transport
    connection = transport.get_protocol() if transport is not None else None
    if not isinstance(connection, GuardedConnection):  # a test server, or already gone
        return await handler(request)
    connection.head_received()
    try:
        return await handler(request)
    finally:
        connection.answered()


class GuardedSite(web.BaseSite):
    """A TCP site of an aiohttp runner whose every connection is a GuardedConnection."""

    def __init__(self, runner: web.BaseRunner, host: str, port: int, *, guard: ConnectionGuard) -> None:
        super().__init__(runner, backlog=LISTEN_BACKLOG)
        self._host, self._port, self._guard = host, port, guard

    @property
    def name(self) -> str:
        return "http://" + join_host_port(self._host, self._port)

    async def start(self) -> None:
        await super().start()
        server = self._runner.server
        guard = self._guard
        self._server = await asyncio.get_running_loop().create_server(
            lambda: GuardedConnection(server, guard), self._host, self._port, backlog=self._backlog)


def _peer(transport: asyncio.BaseTransport) -> str:
    peername = transport.get_extra_info("peername")
    return str(peername[0]) if isinstance(peername, tuple) and peername else "unknown"


def _http_answer(refusal: Refusal) -> bytes:
    """The whole HTTP/1.1 answer to a refused connection, made once: the API's error body."""
    body = orjson.dumps({"error": {"code": refusal.code, "message": refusal.message}})
    reason = {429: "Too Many Requests", 503: "Service Unavailable"}[refusal.status]
    headers = {"Content-Type": "application/json", "Content-Length": str(len(body)),
               "Retry-After": str(refusal.retry_after_secs), "Connection": "close", **SECURITY_HEADERS}
    head = f"HTTP/1.1 {refusal.status} {reason}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return head.encode("ascii") + b"\r\n" + body
