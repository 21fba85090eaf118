"""WebSocket frames: parse what clients send into validated types, encode what we send.

Pure: no sockets. Parsing raises an ApiError subclass that names the problem
(and carries the frame's ``ref`` when it had one), so the handler can answer
with an error frame and keep the connection open.

Server frames are JSON encoded once; ``text_frame`` wraps the JSON in a
WebSocket text frame with the websockets library's own serializer, so a
message is framed once per gateway and the same bytes go to every recipient
(server frames are unmasked and we negotiate no extensions, so they are
identical for every connection).
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson
from websockets.frames import Frame, Opcode

from chorus.common.text import describe_control, forbidden_control, is_invisible
from chorus.wire.limits import MAX_ID_CHARS, MAX_IDEMPOTENCY_KEY_CHARS, MAX_SEQ
from chorus.wire.senders import SYSTEM_SENDER_ID

from .errors import BadJson, InvalidArgument, TooLarge, UnknownOp

__all__ = [
    "AuthFrame", "SendFrame", "PingFrame", "ResumeFrame", "ReadFrame", "RefreshFrame", "ClientFrame",
    "parse_client_frame", "encode", "text_frame", "message_payload", "message_json", "group_states",
    "MAX_REF_CHARS",
]

MAX_REF_CHARS = 64
MAX_TOKEN_CHARS = 4096
MAX_RESUME_GROUPS = 1000  # more than any account may join


@dataclass(frozen=True, slots=True)
class AuthFrame:
    token: str


@dataclass(frozen=True, slots=True)
class SendFrame:
    group: str
    text: str
    ref: str | int | None
    idempotency_key: str = ""  # "" when the client sent none


@dataclass(frozen=True, slots=True)
class PingFrame:
    pass


@dataclass(frozen=True, slots=True)
class ResumeFrame:
    since: dict[str, int]  # group id -> last seq the client has


@dataclass(frozen=True, slots=True)
class ReadFrame:
    group: str
    seq: int
    ref: str | int | None = None


@dataclass(frozen=True, slots=True)
class RefreshFrame:
    token: str
    ref: str | int | None = None


ClientFrame = AuthFrame | SendFrame | PingFrame | ResumeFrame | ReadFrame | RefreshFrame


def parse_client_frame(data: str | bytes, *, max_text_chars: int) -> ClientFrame:
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise BadJson("frame is not valid JSON") from None
    if not isinstance(obj, dict):
        raise BadJson("frame must be a JSON object")
    ref = _ref(obj)
    op = obj.get("op")
    parse = _PARSERS.get(op) if isinstance(op, str) else None
    if parse is None:
        known = ", ".join(sorted(_PARSERS))
        raise UnknownOp(f"unknown op {op!r}; expected one of: {known}", ref=ref)
    return parse(obj, ref, max_text_chars)


def _ref(obj: dict) -> str | int | None:
    ref = obj.get("ref")
    if ref is None or (isinstance(ref, int) and not isinstance(ref, bool)):
        return ref
    if isinstance(ref, str) and len(ref) <= MAX_REF_CHARS:
        return ref
    raise InvalidArgument(f"ref must be a string of at most {MAX_REF_CHARS} characters or an integer")


def _string(obj: dict, name: str, ref, *, max_chars: int) -> str:
    value = obj.get(name)
    if not isinstance(value, str) or not value:
        raise InvalidArgument(f"{name!r} must be a non-empty string", ref=ref)
    if len(value) > max_chars:
        raise InvalidArgument(f"{name!r} is longer than {max_chars} characters", ref=ref)
    return value


def _auth(obj: dict, ref, _max_text_chars: int) -> AuthFrame:
    return AuthFrame(_string(obj, "token", ref, max_chars=MAX_TOKEN_CHARS))


def _send(obj: dict, ref, max_text_chars: int) -> SendFrame:
    group = _string(obj, "group", ref, max_chars=MAX_ID_CHARS)
    text = obj.get("text")
    if not isinstance(text, str):
        raise InvalidArgument("'text' must be a string", ref=ref)
    if len(text) > max_text_chars:
        raise TooLarge(f"text is {len(text)} characters; the limit is {max_text_chars}", ref=ref)
    if (char := forbidden_control(text)) is not None:
        raise InvalidArgument(describe_control("text", char), ref=ref)
    if is_invisible(text):  # blank, or only zero-width and other invisible characters
        raise InvalidArgument("text is blank", ref=ref)
    return SendFrame(group, text, ref, _idempotency_key(obj, ref))


def _idempotency_key(obj: dict, ref) -> str:
    key = obj.get("idempotency_key")
    if key is None:
        return ""
    if (not isinstance(key, str) or not key or len(key) > MAX_IDEMPOTENCY_KEY_CHARS
            or forbidden_control(key) is not None):
        raise InvalidArgument(f"'idempotency_key' must be a string of 1-{MAX_IDEMPOTENCY_KEY_CHARS} "
                              "characters without control characters", ref=ref)
    return key


def _ping(_obj: dict, _ref, _max_text_chars: int) -> PingFrame:
    return PingFrame()


def _seq(value, name: str, ref) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_SEQ:
        raise InvalidArgument(f"{name} must be a whole number from 0 to {MAX_SEQ}", ref=ref)
    return value


def _resume(obj: dict, ref, _max_text_chars: int) -> ResumeFrame:
    since = obj.get("since")
    if not isinstance(since, dict):
        raise InvalidArgument("'since' must be an object of group id -> seq", ref=ref)
    if len(since) > MAX_RESUME_GROUPS:
        raise InvalidArgument(f"'since' names more than {MAX_RESUME_GROUPS} groups", ref=ref)
    for group, seq in since.items():
        if not group or len(group) > MAX_ID_CHARS:
            raise InvalidArgument(f"'since' has a bad group id {group[:MAX_ID_CHARS]!r}", ref=ref)
        _seq(seq, f"since[{group!r}]", ref)
    return ResumeFrame(since)


def _read(obj: dict, ref, _max_text_chars: int) -> ReadFrame:
    return ReadFrame(_string(obj, "group", ref, max_chars=MAX_ID_CHARS), _seq(obj.get("seq"), "'seq'", ref), ref)


def _refresh(obj: dict, ref, _max_text_chars: int) -> RefreshFrame:
    return RefreshFrame(_string(obj, "token", ref, max_chars=MAX_TOKEN_CHARS), ref)


_PARSERS = {"auth": _auth, "send": _send, "ping": _ping, "resume": _resume, "read": _read, "refresh": _refresh}


def encode(obj: dict) -> bytes:
    return orjson.dumps(obj)


def text_frame(payload: bytes) -> bytes:
    """A complete, unmasked WebSocket text frame carrying ``payload`` (UTF-8 JSON)."""
    return Frame(Opcode.TEXT, payload).serialize(mask=False)


def message_json(delivery) -> dict:
    """A broker Delivery as the person sees it (history entries; frames add "op").

    A backend's post is marked ``"system": true``: its sender's names are whatever the backend
    chose, so the page must show it as a bot, never as the person those names may imitate.
    """
    sender = delivery.sender
    body = {
        "group": delivery.group_id,
        "seq": delivery.seq,
        "ts": delivery.ts_ms,
        "from": {"id": sender.id, "username": sender.username, "display_name": sender.display_name},
        "text": delivery.text,
    }
    if sender.id == SYSTEM_SENDER_ID:
        body["system"] = True
    return body


def message_payload(delivery) -> bytes:
    """The JSON of a ``message`` frame for a broker Delivery."""
    return orjson.dumps({"op": "message", **message_json(delivery)})


def group_states(groups: dict[str, str], states: dict[str, tuple[int, int]]) -> list[dict]:
    """The groups as ``ready`` and /api/me show them: with last seq and unread count."""
    out = []
    for group_id, name in groups.items():
        last_seq, read_seq = states.get(group_id, (0, 0))
        out.append({"id": group_id, "name": name, "last_seq": last_seq, "unread": max(0, last_seq - read_seq)})
    return out
