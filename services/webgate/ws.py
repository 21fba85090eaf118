"""The WebSocket endpoint: authenticate, register with the broker, then relay.

One handler per connection. The first frame must be ``auth`` within the
deadline; after ``ready`` every frame is answered on its own (an error frame
for a bad one) and the connection stays open. All server frames, this
session's own and fanned-out ones alike, go through ``Session.push``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiohttp import WSCloseCode, WSMsgType, web

from chorus.common.ids import new_id

from .errors import ApiError, BadJson, NotMember, Unauthenticated, UnknownOp
from .frames import AuthFrame, PingFrame, SendFrame, encode, parse_client_frame, text_frame
from .http_api import DEPS
from .sessions import Session

__all__ = ["websocket", "CLOSE_UNAUTHENTICATED", "CLOSE_SLOW_CONSUMER"]

log = logging.getLogger(__name__)

CLOSE_UNAUTHENTICATED = 4001
CLOSE_SLOW_CONSUMER = 1013  # "try again later"
CLOSE_ABORT_SECS = 2.0  # a slow consumer gets this long to take the close frame


async def websocket(request: web.Request) -> web.WebSocketResponse:
    deps = request.app[DEPS]
    settings = deps.settings
    ws = web.WebSocketResponse(max_msg_size=settings.max_frame_bytes, compress=False)
    await ws.prepare(request)
    deps.sockets.add(ws)
    session = None
    try:
        user = await _authenticate(ws, deps)
        if user is None:
            return ws
        groups = await deps.membership.user_groups(user["id"])
        session = Session(new_id("s"), user, groups, request.transport,
                          max_send_buffer_bytes=settings.max_send_buffer_bytes,
                          on_overflow=lambda s: _cut_off(ws, s.transport))
        await deps.hub.register(session)
        # No await between ready and attach: nothing published after
        # registration can slip past this session.
        session.push(text_frame(encode({
            "op": "ready", "user": user,
            "groups": [{"id": i, "name": n} for i, n in groups.items()],
        })))
        deps.hub.attach(session)
        await _relay(ws, session, deps)
    except ApiError as exc:  # a backend or the broker is down: let the page retry
        log.warning("websocket session ended: %s", exc)
        await ws.close(code=WSCloseCode.TRY_AGAIN_LATER, message=b"service unavailable")
    finally:
        deps.sockets.discard(ws)
        if session is not None:
            await deps.hub.unregister(session)
    return ws


async def _authenticate(ws: web.WebSocketResponse, deps) -> dict | None:
    """The account of the first frame's token, or None after closing with 4001."""
    try:
        async with asyncio.timeout(deps.settings.auth_deadline_secs):
            msg = await ws.receive()
    except TimeoutError:
        await ws.close(code=CLOSE_UNAUTHENTICATED, message=b"auth timeout")
        return None
    if msg.type != WSMsgType.TEXT:
        if msg.type == WSMsgType.BINARY:
            await ws.close(code=CLOSE_UNAUTHENTICATED, message=b"first frame must be auth")
        return None
    try:
        frame = parse_client_frame(msg.data, max_text_chars=deps.settings.max_text_chars)
        if not isinstance(frame, AuthFrame):
            raise UnknownOp("first frame must be auth")
        return await deps.auth.authenticate(frame.token)
    except Unauthenticated:
        await ws.close(code=CLOSE_UNAUTHENTICATED, message=b"unauthenticated")
    except (BadJson, UnknownOp) as exc:
        await ws.close(code=CLOSE_UNAUTHENTICATED, message=exc.message.encode()[:120])
    except ApiError as exc:
        if exc.status < 500:
            await ws.close(code=CLOSE_UNAUTHENTICATED, message=exc.message.encode()[:120])
            return None
        raise
    return None


async def _relay(ws: web.WebSocketResponse, session: Session, deps) -> None:
    max_text_chars = deps.settings.max_text_chars
    async for msg in ws:
        if msg.type == WSMsgType.TEXT:
            data = msg.data
        elif msg.type == WSMsgType.BINARY:
            session.push(_error(BadJson("binary frames are not accepted; send JSON text")))
            continue
        else:  # ERROR (aiohttp has already closed, e.g. 1009 for a frame too large)
            break
        try:
            frame = parse_client_frame(data, max_text_chars=max_text_chars)
            if isinstance(frame, SendFrame):
                await _send(frame, session, deps)
            elif isinstance(frame, PingFrame):
                session.push(text_frame(b'{"op":"pong"}'))
            else:
                raise UnknownOp("already authenticated", ref=None)
        except ApiError as exc:
            session.push(_error(exc))


async def _send(frame: SendFrame, session: Session, deps) -> None:
    if frame.group not in session.groups:
        raise NotMember(f"you are not a member of group {frame.group!r}", ref=frame.ref)
    try:
        posted = await deps.hub.broker.post(session.id, frame.group, frame.text)
    except ApiError as exc:
        exc.ref = frame.ref
        raise
    session.push(text_frame(encode({
        "op": "ack", "ref": frame.ref, "group": posted.group_id, "seq": posted.seq, "ts": posted.ts_ms,
    })))


def _error(exc: ApiError) -> bytes:
    body = {"op": "error", "code": exc.code, "message": exc.message}
    if exc.ref is not None:
        body["ref"] = exc.ref
    return text_frame(encode(body))


def _cut_off(ws: web.WebSocketResponse, transport) -> None:
    """Close a slow consumer without waiting on it; abort if it will not even take the close."""
    async def close() -> None:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(CLOSE_ABORT_SECS):
                await ws.close(code=CLOSE_SLOW_CONSUMER, message=b"slow consumer")
                return
        transport.abort()
    task = asyncio.create_task(close())
    _background.add(task)
    task.add_done_callback(_background.discard)


_background: set[asyncio.Task] = set()
