"""The WebSocket endpoint: a thin driver of session_protocol.SessionProtocol.

Per connection: a browser's page must be of this site or an allowed origin (else
403 before the upgrade, origins.py); the client's address must hold fewer than its cap of WebSockets
(else 429 before the upgrade); the first frame must be ``auth`` within the
deadline, with a Chorus or a site token (identity.py; a refusal closes 4001 naming
why); the account must hold fewer than its cap of sessions (else close 4008,
the newest refused: the sessions already open are never cut for a new one); then the
session is registered with the broker (hub.register), ``ready`` is sent, and
every later frame goes to the protocol, whose answer is carried out here. All
server frames, this session's own and fanned-out ones alike, go through
``Session.push`` (sessions.py states the per-socket policy).

From the auth frame on, the session follows its token: a timer closes it at the
token's expiry unless a ``refresh`` moved it, and the revocation poller
(revocations.py) closes it when the token is logged out anywhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
import time

from aiohttp import WSCloseCode, web

from chorus.common.ids import new_id
from chorus.common.ratelimit import Rate

from .admission import CAP_RETRY_AFTER_SECS
from .deps import DEPS, LIMITS, Deps, SocketLimits
from .errors import ApiError, RateLimited, SiteTokenRefused, Unauthenticated
from .http_api import client_address
from .identity import Identity
from .origins import check_websocket_origin
from .resume import resume
from .session_protocol import (CLOSE_UNAUTHENTICATED, Authenticate, Close, MarkRead, Post, Refresh, Reply, Resume,
                               SessionProtocol, Stop, close_reason, too_many_sessions)
from .sessions import Session

__all__ = ["websocket", "CLOSE_SLOW_CONSUMER"]

log = logging.getLogger(__name__)

CLOSE_SLOW_CONSUMER = 1013  # "try again later"
CLOSE_ABORT_SECS = 2.0  # a slow consumer gets this long to take the close frame
EXPIRY_CHECK_MAX_SECS = 60.0  # the expiry timer looks again at least this often (wall clock jumps)


async def websocket(request: web.Request) -> web.WebSocketResponse:
    deps, limits = request.app[DEPS], request.app[LIMITS]
    check_websocket_origin(request, deps.settings.allowed_origins)
    address = client_address(request.remote, request.headers.get("X-Forwarded-For"), deps.settings.trusted_proxies)
    per_address = limits.websockets_per_address
    if not per_address.add(address):
        raise RateLimited(f"too many WebSockets from your address: at most {per_address.cap} at once",
                          retry_after_secs=CAP_RETRY_AFTER_SECS)
    try:
        return await _serve(request, deps, limits)
    finally:
        per_address.remove(address)


async def _serve(request: web.Request, deps: Deps, limits: SocketLimits) -> web.WebSocketResponse:
    settings = deps.settings
    ws = web.WebSocketResponse(max_msg_size=settings.max_frame_bytes, compress=False)
    await ws.prepare(request)
    deps.sockets.add(ws)
    protocol = SessionProtocol(max_text_chars=settings.max_text_chars,
                               rate=Rate(per_sec=settings.ws_messages_per_sec, burst=settings.ws_messages_burst),
                               account_posts=limits.account_posts)
    session = None
    counted = None  # the account whose session count this one holds
    timer = None

    def close_revoked() -> None:
        _close_soon(ws, protocol.revoked())

    try:
        identity = await _authenticate(ws, protocol, deps)
        if identity is None:
            return ws
        user = identity.user
        protocol.authenticated(identity.account_id, identity.expires_at_ms, identity.token_id)
        deps.watched.watch(protocol.token_id, close_revoked)
        timer = asyncio.create_task(_close_at_expiry(ws, protocol), name="token-expiry")
        if not limits.sessions_per_account.add(user["id"]):
            refusal = too_many_sessions(limits.sessions_per_account.cap)
            await ws.close(code=refusal.code, message=refusal.reason)
            return ws
        counted = user["id"]
        groups = await deps.membership.user_groups(user["id"])
        session = Session(new_id("s"), user, groups, request.transport,
                          max_send_buffer_bytes=settings.max_send_buffer_bytes,
                          on_overflow=lambda s: _cut_off(ws, s.transport))
        states = await deps.broker.group_states(user["id"], groups)
        await deps.hub.register(session, {g: last for g, (last, _read) in states.items()})
        # No await between ready and attach: nothing published after
        # registration can slip past this session.
        session.push(protocol.ready(user, session.groups, states))
        deps.hub.attach(session)
        await _relay(ws, protocol, session, deps, close_revoked)
    except ApiError as exc:  # a backend or the broker is down: let the page retry
        log.warning("websocket session ended: %s", exc)
        await ws.close(code=WSCloseCode.TRY_AGAIN_LATER, message=b"service unavailable")
    except Exception:  # a bug of ours: say so and let the page reconnect
        log.exception("websocket session failed")
        await ws.close(code=WSCloseCode.INTERNAL_ERROR, message=b"internal error")
    finally:
        deps.sockets.discard(ws)
        deps.watched.unwatch(protocol.token_id, close_revoked)
        if timer is not None:
            timer.cancel()
        if counted is not None:
            limits.sessions_per_account.remove(counted)
        if session is not None:
            await deps.hub.unregister(session)
    return ws


async def _authenticate(ws: web.WebSocketResponse, protocol: SessionProtocol, deps: Deps) -> Identity | None:
    """Who the first frame's token names, or None after closing with 4001 (a site token's
    refusal names the failed check; a Chorus token's says "unauthenticated")."""
    try:
        async with asyncio.timeout(deps.settings.auth_deadline_secs):
            msg = await ws.receive()
    except TimeoutError:
        await ws.close(code=CLOSE_UNAUTHENTICATED, message=b"auth timeout")
        return None
    step = protocol.first_message(msg.type, msg.data)
    if not isinstance(step, Authenticate):
        if step is not None:
            await ws.close(code=step.code, message=step.reason)
        return None
    try:
        return await deps.identities.identify(step.token)
    except SiteTokenRefused as exc:
        await ws.close(code=CLOSE_UNAUTHENTICATED, message=close_reason(exc.message))
    except Unauthenticated:
        await ws.close(code=CLOSE_UNAUTHENTICATED, message=b"unauthenticated")
    except ApiError as exc:
        if exc.status >= 500:
            raise
        await ws.close(code=CLOSE_UNAUTHENTICATED, message=close_reason(exc.message))
    return None


async def _relay(ws: web.WebSocketResponse, protocol: SessionProtocol, session: Session, deps: Deps,
                 close_revoked) -> None:
    broker = deps.broker
    async for msg in ws:
        step = protocol.receive(msg.type, msg.data, time.monotonic())
        if isinstance(step, Reply):
            session.push(step.frame)
        elif isinstance(step, Refresh):
            if not await _refresh(ws, protocol, session, deps, step.frame, close_revoked):
                break
        elif isinstance(step, Post):
            frame = step.frame
            try:
                posted = await broker.post(session.id, frame.group, frame.text, frame.idempotency_key)
            except ApiError as exc:
                session.push(protocol.refused(exc, frame.ref))
            else:
                session.push(protocol.acked(frame, posted))
        elif isinstance(step, MarkRead):
            frame = step.frame
            try:
                last_seq, read_seq = await broker.mark_read(session.account_id, frame.group, frame.seq)
            except ApiError as exc:
                session.push(protocol.refused(exc, frame.ref))
            else:
                session.push(protocol.read_state(frame, last_seq, read_seq))
        elif isinstance(step, Resume):
            try:
                await resume(session, step.frame.since, broker=broker, fanout=deps.hub.fanout,
                             bound=deps.settings.resume_max_messages)
            except ApiError as exc:
                session.push(protocol.refused(exc, None))
        elif isinstance(step, Stop):
            break


async def _refresh(ws: web.WebSocketResponse, protocol: SessionProtocol, session: Session, deps: Deps, frame,
                   close_revoked) -> bool:
    """Carry out a ``refresh`` frame; False when it closed the session (another account's token)."""
    try:
        identity = await deps.identities.identify(frame.token)
    except ApiError as exc:  # a bad new token: say so; the session carries on until its current expiry
        session.push(protocol.refused(exc, frame.ref))
        return True
    old_token_id = protocol.token_id
    step = protocol.refreshed(identity.account_id, identity.expires_at_ms, identity.token_id, frame.ref)
    if isinstance(step, Close):
        await ws.close(code=step.code, message=step.reason)
        return False
    deps.watched.unwatch(old_token_id, close_revoked)
    deps.watched.watch(protocol.token_id, close_revoked)
    session.push(step.frame)
    return True


async def _close_at_expiry(ws: web.WebSocketResponse, protocol: SessionProtocol) -> None:
    """Close the session when its token expires; a refresh meanwhile moves the expiry, which
    the next look finds."""
    while True:
        left = protocol.expiry(int(time.time() * 1000))  # wall clock: a token's exp is one
        if isinstance(left, Close):
            with contextlib.suppress(Exception):
                await ws.close(code=left.code, message=left.reason)
            return
        await asyncio.sleep(min(left, EXPIRY_CHECK_MAX_SECS))


def _close_soon(ws: web.WebSocketResponse, close: Close) -> None:
    """Close ``ws`` from outside its handler (its token was revoked), without waiting here."""
    async def run() -> None:
        with contextlib.suppress(Exception):
            await ws.close(code=close.code, message=close.reason)

    task = asyncio.create_task(run())
    _background.add(task)
    task.add_done_callback(_background.discard)


def _cut_off(ws: web.WebSocketResponse, transport) -> None:
    """Close a slow consumer without waiting on it.

    It gets the 1013 close frame if it reads it within CLOSE_ABORT_SECS;
    otherwise the connection is dropped. Linger 0 (set now, while the socket
    is surely open) makes the final close send RST and free the kernel's
    buffer at once instead of keeping megabytes queued for a reader that will
    never take them.
    """
    log.warning("cutting off a slow consumer with %d bytes unsent", transport.get_write_buffer_size())
    sock = transport.get_extra_info("socket")
    with contextlib.suppress(OSError, AttributeError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    async def close() -> None:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(CLOSE_ABORT_SECS):
                await ws.close(code=CLOSE_SLOW_CONSUMER, message=b"slow consumer")
        transport.abort()

    task = asyncio.create_task(close())
    _background.add(task)
    task.add_done_callback(_background.discard)


_background: set[asyncio.Task] = set()
