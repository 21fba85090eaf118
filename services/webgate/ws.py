"""The WebSocket endpoint: authenticate, register with the broker, then relay.

One handler per connection. The first frame must be ``auth`` within the
deadline; after ``ready`` every frame is answered on its own (an error frame
for a bad one) and the connection stays open. All server frames, this
session's own and fanned-out ones alike, go through ``Session.push``.

Each connection may send ``ws_messages_burst`` frames at once and
``ws_messages_per_sec`` sustained (a token bucket). A frame over that is not
done: it is answered with a ``rate_limited`` error frame (with the frame's
``ref`` and ``retry_after_ms``) and the connection stays open, so a client
that slows down carries on where it was.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
import time

from aiohttp import WSCloseCode, WSMsgType, web

from chorus.common.ids import new_id
from chorus.common.ratelimit import Rate, TokenBucket

from .errors import ApiError, BadJson, NotMember, RateLimited, Unauthenticated, UnknownOp
from .frames import (AuthFrame, PingFrame, ReadFrame, ResumeFrame, SendFrame, encode, group_states,
                     message_payload, parse_client_frame, text_frame)
from .http_api import DEPS
from .sessions import Session

__all__ = ["websocket", "close_reason", "CLOSE_UNAUTHENTICATED", "CLOSE_SLOW_CONSUMER"]

log = logging.getLogger(__name__)

CLOSE_UNAUTHENTICATED = 4001
CLOSE_SLOW_CONSUMER = 1013  # "try again later"
CLOSE_ABORT_SECS = 2.0  # a slow consumer gets this long to take the close frame
MAX_CLOSE_REASON_BYTES = 123  # a close frame's payload is at most 125 bytes: 2 for the code


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
        states = await deps.hub.broker.group_states(user["id"], groups)
        await deps.hub.register(session, {g: last for g, (last, _read) in states.items()})
        # No await between ready and attach: nothing published after
        # registration can slip past this session.
        session.push(text_frame(encode({
            "op": "ready", "user": user, "groups": group_states(groups, states),
        })))
        deps.hub.attach(session)
        await _relay(ws, session, deps)
    except ApiError as exc:  # a backend or the broker is down: let the page retry
        log.warning("websocket session ended: %s", exc)
        await ws.close(code=WSCloseCode.TRY_AGAIN_LATER, message=b"service unavailable")
    except Exception:  # a bug of ours: say so and let the page reconnect
        log.exception("websocket session failed")
        await ws.close(code=WSCloseCode.INTERNAL_ERROR, message=b"internal error")
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
        await ws.close(code=CLOSE_UNAUTHENTICATED, message=close_reason(exc.message))
    except ApiError as exc:
        if exc.status < 500:
            await ws.close(code=CLOSE_UNAUTHENTICATED, message=close_reason(exc.message))
            return None
        raise
    return None


async def _relay(ws: web.WebSocketResponse, session: Session, deps) -> None:
    settings = deps.settings
    max_text_chars = settings.max_text_chars
    rate = Rate(per_sec=settings.ws_messages_per_sec, burst=settings.ws_messages_burst)
    bucket = TokenBucket(rate, time.monotonic())
    async for msg in ws:
        if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
            break  # ERROR (aiohttp has already closed, e.g. 1009 for a frame too large)
        wait = bucket.take(time.monotonic())
        if wait:
            session.push(_error(_rate_limited(msg.data, wait, rate, max_text_chars)))
            continue
        if msg.type == WSMsgType.BINARY:
            session.push(_error(BadJson("binary frames are not accepted; send JSON text")))
            continue
        try:
            frame = parse_client_frame(msg.data, max_text_chars=max_text_chars)
            if isinstance(frame, ResumeFrame):
                await _resume(frame, session, deps)
            elif isinstance(frame, SendFrame):
                await _send(frame, session, deps)
            elif isinstance(frame, ReadFrame):
                await _read(frame, session, deps)
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


async def _resume(frame: ResumeFrame, session: Session, deps) -> None:
    """Replay what the page missed, group by group, then release held live messages."""
    bound = deps.settings.resume_max_messages
    deps.hub.hold_live(session)
    replayed_upto: dict[str, int] = {}
    try:
        for group, since in frame.since.items():
            if group not in session.groups:
                continue  # left meanwhile, or never a member: nothing to replay
            messages = await _missed(deps.hub.broker, group, since, bound)
            if messages is None:
                session.push(text_frame(encode({"op": "reset", "group": group})))
                continue
            for delivery in messages:
                session.push(text_frame(message_payload(delivery)))
            replayed_upto[group] = messages[-1].seq if messages else since
    finally:
        deps.hub.release_live(session, replayed_upto)
    session.push(text_frame(b'{"op":"resumed"}'))


async def _missed(broker, group: str, since: int, bound: int) -> list | None:
    """The group's messages after ``since``, oldest first; None when more than ``bound``.

    The broker caps each page (max_history_page), so this pages forward until
    done or past the bound.
    """
    missed: list = []
    after = since
    while len(missed) <= bound:
        page, more = await broker.history(group, after_seq=after, limit=bound + 1 - len(missed))
        missed += page
        if not more or not page:
            return missed if len(missed) <= bound else None
        after = page[-1].seq
    return None


async def _read(frame: ReadFrame, session: Session, deps) -> None:
    if frame.group not in session.groups:
        raise NotMember(f"you are not a member of group {frame.group!r}")
    last_seq, read_seq = await deps.hub.broker.mark_read(session.account_id, frame.group, frame.seq)
    session.push(text_frame(encode({
        "op": "read", "group": frame.group, "seq": read_seq, "unread": max(0, last_seq - read_seq)})))


def close_reason(text: str) -> bytes:
    """``text`` as a close frame's reason: at most MAX_CLOSE_REASON_BYTES of UTF-8, never cut
    inside a character (a client must fail a connection whose reason is not valid UTF-8)."""
    return text.encode("utf-8", "replace")[:MAX_CLOSE_REASON_BYTES].decode("utf-8", "ignore").encode()


def _rate_limited(data: str | bytes, wait: float, rate: Rate, max_text_chars: int) -> RateLimited:
    """The error for a frame over the rate, carrying the frame's ref when it has one."""
    ref = None
    if isinstance(data, str):
        try:
            frame = parse_client_frame(data, max_text_chars=max_text_chars)
            ref = getattr(frame, "ref", None)
        except ApiError as exc:
            ref = exc.ref
    return RateLimited(f"too many frames: at most {rate.burst} at once and {rate.per_sec:g} a second; "
                       "this one was not done", retry_after_secs=wait, ref=ref)


def _error(exc: ApiError) -> bytes:
    body = {"op": "error", "code": exc.code, "message": exc.message}
    if exc.ref is not None:
        body["ref"] = exc.ref
    if isinstance(exc, RateLimited) and exc.retry_after_secs is not None:
        body["retry_after_ms"] = max(1, round(exc.retry_after_secs * 1000))
    return text_frame(encode(body))


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
