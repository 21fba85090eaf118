"""One WebSocket session's decisions, without sockets: frames in, frames and broker work out.

The aiohttp handler (ws.py) is a driver: it feeds each message the client
sends to ``first_message`` (before ``ready``) or ``receive`` (after), carries
out what comes back, and hands results back for the frames to write.

    first_message -> Authenticate(token) | Close(code, reason)
    authenticated                                  the token the session runs on: account, expiry, id
    receive       -> Reply(frame)                  answer at once (pong, an error, rate_limited)
                   | Post(SendFrame) | Resume(ResumeFrame) | MarkRead(ReadFrame)   broker work
                   | Refresh(RefreshFrame)         check the new token, then ``refreshed``
                   | Stop                          the client closed, or aiohttp failed the socket
    acked / refused / read_state / ready           the frames for what the broker answered
    refreshed     -> Reply(refreshed) | Close      the new token's account and expiry
    expiry(now)   -> seconds left | Close          the driver's timer asks again when they run out
    revoked       -> Close                         the token was logged out (revocations.py)

Invariants:
- The first message must be a text ``auth`` frame; anything else closes with
  4001 and a reason that names the problem (valid UTF-8, never cut inside a
  character).
- After ``ready`` every frame is answered on its own (an error frame for a bad
  one, with its ``ref``) and the connection stays open.
- Each connection may send ``burst`` frames at once and ``per_sec`` sustained
  (a token bucket); a frame over that is not done: it gets ``rate_limited``
  with its ``ref`` and ``retry_after_ms``, so a client that slows down carries
  on where it was.
- Posts are also limited per account (``account_posts``, one bucket per account
  shared by all that account's sessions on the gateway), answered the same way:
  opening more sockets does not let an account post faster.
- A frame naming a group the person is not in is refused here, before any
  broker work; the broker checks membership again on its own.
- Sessions follow tokens. The session lives until its token's expiry, then
  closes with 4001 "token expired", unless a ``refresh`` frame brought a valid
  token of the SAME account first (answered ``refreshed`` with the new expiry;
  the old token stops mattering, its logout included). A refresh token of
  another account closes the session with 4001: a socket never changes hands.
  A refresh token that is bad or expired gets an ``unauthenticated`` error and
  the session carries on until its current token's expiry.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

from aiohttp import WSMsgType

from chorus.common.ratelimit import KeyedLimiter, Rate, TokenBucket
from chorus.wire.pb import broker_pb2

from .errors import ApiError, BadJson, NotMember, RateLimited, UnknownOp
from .frames import (AuthFrame, PingFrame, ReadFrame, RefreshFrame, ResumeFrame, SendFrame, encode, group_states,
                     parse_client_frame, text_frame)

__all__ = ["SessionProtocol", "Authenticate", "Close", "Reply", "Post", "Resume", "MarkRead", "Refresh", "Stop",
           "close_reason", "error_frame", "too_many_sessions", "CLOSE_UNAUTHENTICATED", "CLOSE_TOO_MANY_SESSIONS",
           "MAX_CLOSE_REASON_BYTES", "TOKEN_EXPIRED", "TOKEN_REVOKED", "ANOTHER_ACCOUNT"]

CLOSE_UNAUTHENTICATED = 4001
TOKEN_EXPIRED = b"token expired"
TOKEN_REVOKED = b"token revoked"
ANOTHER_ACCOUNT = b"refresh token is for another account"
CLOSE_TOO_MANY_SESSIONS = 4008  # the account has its limit of sessions open: the newest is refused
MAX_CLOSE_REASON_BYTES = 123  # a close frame's payload is at most 125 bytes: 2 for the code
PONG = text_frame(b'{"op":"pong"}')


@dataclass(frozen=True, slots=True)
class Authenticate:
    token: str


@dataclass(frozen=True, slots=True)
class Close:
    code: int
    reason: bytes


@dataclass(frozen=True, slots=True)
class Reply:
    frame: bytes


@dataclass(frozen=True, slots=True)
class Post:
    frame: SendFrame


@dataclass(frozen=True, slots=True)
class Resume:
    frame: ResumeFrame


@dataclass(frozen=True, slots=True)
class MarkRead:
    frame: ReadFrame


@dataclass(frozen=True, slots=True)
class Refresh:
    frame: RefreshFrame


@dataclass(frozen=True, slots=True)
class Stop:
    pass


class SessionProtocol:
    def __init__(self, *, max_text_chars: int, rate: Rate, account_posts: KeyedLimiter | None = None,
                 now: float | None = None) -> None:
        self._max_text_chars = max_text_chars
        self._rate = rate
        self._bucket = TokenBucket(rate, time.monotonic() if now is None else now)
        self._account_posts = account_posts  # shared by every session of the gateway
        self._account: str | None = None
        self._expires_at_ms: int | None = None
        self.token_id = ""  # of the token the session now runs on ("" for a site token)
        self.groups: Mapping[str, str] = {}  # the live session's groups, shared with the hub

    # before ready ---------------------------------------------------------------

    def first_message(self, kind: WSMsgType, data) -> Authenticate | Close | None:
        """The auth frame's token, a Close, or None when the socket is already gone."""
        if kind == WSMsgType.BINARY:
            return Close(CLOSE_UNAUTHENTICATED, b"first frame must be auth")
        if kind != WSMsgType.TEXT:
            return None
        try:
            frame = parse_client_frame(data, max_text_chars=self._max_text_chars)
        except (BadJson, UnknownOp, ApiError) as exc:
            return Close(CLOSE_UNAUTHENTICATED, close_reason(exc.message))
        if not isinstance(frame, AuthFrame):
            return Close(CLOSE_UNAUTHENTICATED, close_reason("first frame must be auth"))
        return Authenticate(frame.token)

    def authenticated(self, account_id: str, expires_at_ms: int, token_id: str) -> None:
        """The auth frame's token was good: the session is this account's until ``expires_at_ms``."""
        self._account = account_id
        self._expires_at_ms = expires_at_ms
        self.token_id = token_id

    def ready(self, user: dict, groups: Mapping[str, str], states: dict[str, tuple[int, int]]) -> bytes:
        """The ``ready`` frame (with the token's expiry, when known: refresh before it); from here
        on ``groups`` (the hub's live copy) decides what is allowed."""
        self.groups = groups
        self._account = user["id"]
        body = {"op": "ready", "user": user, "groups": group_states(dict(groups), states)}
        if self._expires_at_ms is not None:
            body["expires_at"] = self._expires_at_ms
        return text_frame(encode(body))

    # the token -------------------------------------------------------------------

    def expiry(self, now_ms: int) -> float | Close:
        """Seconds until the token expires, or the Close once it has (``now_ms``: wall clock,
        since a token's exp is one)."""
        if self._expires_at_ms is None:
            return float("inf")
        left_ms = self._expires_at_ms - now_ms
        return left_ms / 1000 if left_ms > 0 else Close(CLOSE_UNAUTHENTICATED, TOKEN_EXPIRED)

    def refreshed(self, account_id: str, expires_at_ms: int, token_id: str, ref=None) -> Reply | Close:
        """A refresh token checked out: the session runs on it if it is the same account's."""
        if account_id != self._account:
            return Close(CLOSE_UNAUTHENTICATED, ANOTHER_ACCOUNT)
        self._expires_at_ms = expires_at_ms
        self.token_id = token_id
        body = {"op": "refreshed", "expires_at": expires_at_ms}
        if ref is not None:
            body["ref"] = ref
        return Reply(text_frame(encode(body)))

    def revoked(self) -> Close:
        return Close(CLOSE_UNAUTHENTICATED, TOKEN_REVOKED)

    # after ready -----------------------------------------------------------------

    def receive(self, kind: WSMsgType, data, now: float) -> Reply | Post | Resume | MarkRead | Refresh | Stop:
        if kind not in (WSMsgType.TEXT, WSMsgType.BINARY):
            return Stop()  # closed, or aiohttp failed it (e.g. 1009 for a frame too large)
        wait = self._bucket.take(now)
        if wait:
            return Reply(error_frame(self._rate_limited(data, wait)))
        if kind == WSMsgType.BINARY:
            return Reply(error_frame(BadJson("binary frames are not accepted; send JSON text")))
        try:
            frame = parse_client_frame(data, max_text_chars=self._max_text_chars)
            if isinstance(frame, SendFrame):
                self._check_member(frame.group, frame.ref)
                self._check_account_rate(frame.ref, now)
                return Post(frame)
            if isinstance(frame, ResumeFrame):
                return Resume(frame)
            if isinstance(frame, ReadFrame):
                self._check_member(frame.group, frame.ref)
                return MarkRead(frame)
            if isinstance(frame, RefreshFrame):
                return Refresh(frame)
            if isinstance(frame, PingFrame):
                return Reply(PONG)
            raise UnknownOp("already authenticated")
        except ApiError as exc:
            return Reply(error_frame(exc))

    def acked(self, frame: SendFrame, posted: broker_pb2.Posted) -> bytes:
        body = {"op": "ack", "ref": frame.ref, "group": posted.group_id, "seq": posted.seq, "ts": posted.ts_ms}
        if frame.idempotency_key:
            body["idempotency_key"] = frame.idempotency_key
        return text_frame(encode(body))

    def refused(self, exc: ApiError, ref) -> bytes:
        exc.ref = ref
        return error_frame(exc)

    def read_state(self, frame: ReadFrame, last_seq: int, read_seq: int) -> bytes:
        body = {"op": "read", "group": frame.group, "seq": read_seq, "unread": max(0, last_seq - read_seq)}
        if frame.ref is not None:
            body["ref"] = frame.ref
        return text_frame(encode(body))

    def _check_member(self, group: str, ref) -> None:
        if group not in self.groups:
            raise NotMember(f"you are not a member of group {group!r}", ref=ref)

    def _check_account_rate(self, ref, now: float) -> None:
        if self._account_posts is None:
            return
        wait = self._account_posts.take(self._account, now)
        if wait:
            rate = self._account_posts.rate
            raise RateLimited(f"your account is posting too fast: at most {rate.burst} at once and "
                              f"{rate.per_sec:g} a second, all its connections together; this one was not posted",
                              retry_after_secs=wait, ref=ref)

    def _rate_limited(self, data, wait: float) -> RateLimited:
        """The error for a frame over the rate, carrying the frame's ref when it has one."""
        ref = None
        if isinstance(data, str):
            try:
                ref = getattr(parse_client_frame(data, max_text_chars=self._max_text_chars), "ref", None)
            except ApiError as exc:
                ref = exc.ref
        rate = self._rate
        return RateLimited(f"too many frames: at most {rate.burst} at once and {rate.per_sec:g} a second; "
                           "this one was not done", retry_after_secs=wait, ref=ref)


def close_reason(text: str) -> bytes:
    """``text`` as a close frame's reason: at most MAX_CLOSE_REASON_BYTES of UTF-8, never cut
    inside a character (a client must fail a connection whose reason is not valid UTF-8)."""
    return text.encode("utf-8", "replace")[:MAX_CLOSE_REASON_BYTES].decode("utf-8", "ignore").encode()


def too_many_sessions(cap: int) -> Close:
    """How a session past its account's cap is closed (the page then retries only slowly)."""
    return Close(CLOSE_TOO_MANY_SESSIONS, close_reason(f"too many sessions: at most {cap} open at once per account"))


def error_frame(exc: ApiError) -> bytes:
    body = {"op": "error", "code": exc.code, "message": exc.message}
    if exc.ref is not None:
        body["ref"] = exc.ref
    if isinstance(exc, RateLimited) and exc.retry_after_secs is not None:
        body["retry_after_ms"] = max(1, round(exc.retry_after_secs * 1000))
    return text_frame(encode(body))
