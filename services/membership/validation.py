"""Pure input rules for groups and ids; no I/O, so everything here is tested without a database.

Invariants the rest of the service relies on once a value has passed through here:
- a group name is stripped, 1..MAX_GROUP_NAME_CHARS characters, and follows the
  rules for every name people show each other (chorus.common.names: no control
  or bidi characters, something visible, no mixed-script look-alikes);
- two names are "the same" exactly when their ``name_key`` is equal (case,
  compatibility forms and look-alike characters ignored: "Alice" and "Аlice"
  with a Cyrillic А, "paypal" and "paypaI"), which is what the unique index is
  built on;
- an id is 1..MAX_ID_CHARS printable characters (so no NUL, newline or other
  control character can reach logs, topics or SQL parameters).
"""

from __future__ import annotations

import base64
import binascii
import unicodedata

import orjson

from chorus.common.names import confusable_key, name_problem
from chorus.common.text import describe_control, forbidden_control
from chorus.membership.errors import InvalidInput
from chorus.wire.limits import MAX_ID_CHARS

__all__ = [
    "MAX_GROUP_NAME_CHARS",
    "MAX_ID_CHARS",
    "DEFAULT_MAX_MEMBERS_PER_GROUP",
    "DEFAULT_MAX_GROUPS_PER_ACCOUNT",
    "group_name",
    "name_key",
    "sort_key",
    "check_id",
    "page_size",
    "search_query",
    "encode_cursor",
    "decode_cursor",
    "MAX_QUERY_CHARS",
]

MAX_QUERY_CHARS = 128  # a directory search longer than this cannot be part of any name

MAX_GROUP_NAME_CHARS = 64
# Defaults for the two configurable limits (Settings and MembershipStore take the real values).
DEFAULT_MAX_MEMBERS_PER_GROUP = 10_000
DEFAULT_MAX_GROUPS_PER_ACCOUNT = 500


def group_name(raw: str) -> str:
    """``raw`` stripped of surrounding whitespace, or InvalidInput saying what is wrong."""
    name = raw.strip()
    if not name:
        raise InvalidInput("group name must not be empty")
    if len(name) > MAX_GROUP_NAME_CHARS:
        raise InvalidInput(f"group name must be at most {MAX_GROUP_NAME_CHARS} characters, got {len(name)}")
    if (problem := name_problem(name, "group name")) is not None:
        raise InvalidInput(problem)
    return name


def name_key(name: str) -> str:
    """The uniqueness key of a group name: "Chat", "CHAT" and "chat" share one key, and so do
    "Alice" and "Аlice" (Cyrillic А), "STRASSE" and "straße", a precomposed "é" and "e" with a
    combining accent (chorus.common.names.confusable_key). Directory searches compare keys too."""
    return confusable_key(name)


def sort_key(name: str) -> str:
    """The order of groups by name: case folded, NFKC, so "apple" < "Banana" < "cherry" (the
    look-alike ``name_key`` is for sameness, not order: it reads "Movies" as "rnovles")."""
    return unicodedata.normalize("NFC", unicodedata.normalize("NFKC", name).casefold())


def check_id(raw: str, *, field: str) -> str:
    """``raw`` unchanged when it is a usable opaque id, else InvalidInput naming ``field``."""
    if not raw:
        raise InvalidInput(f"{field} must not be empty")
    if len(raw) > MAX_ID_CHARS:
        raise InvalidInput(f"{field} must be at most {MAX_ID_CHARS} characters, got {len(raw)}")
    if not raw.isprintable():  # False for NUL and every other control character
        raise InvalidInput(f"{field} must contain only printable characters")
    return raw


def page_size(requested: int, *, default: int, maximum: int) -> int:
    """How many entries to return: 0 means ``default``, above ``maximum`` is capped, negative is an error."""
    if requested < 0:
        raise InvalidInput(f"limit must be >= 0, got {requested}")
    if requested == 0:
        return default
    return min(requested, maximum)


def search_query(raw: str) -> str:
    """A directory search as typed, stripped; "" for none. InvalidInput for a control character
    (PostgreSQL cannot even compare NUL) or an absurd length."""
    query = raw.strip()
    if len(query) > MAX_QUERY_CHARS:
        raise InvalidInput(f"query must be at most {MAX_QUERY_CHARS} characters, got {len(query)}")
    if (char := forbidden_control(query)) is not None:
        raise InvalidInput(describe_control("query", char))
    return query


def encode_cursor(*parts: str) -> str:
    """An opaque cursor for the next page: the position's parts, JSON in URL-safe base64."""
    return base64.urlsafe_b64encode(orjson.dumps(parts)).decode().rstrip("=")


def decode_cursor(cursor: str, *, parts: int) -> tuple[str, ...]:
    """The parts ``encode_cursor`` put in; InvalidInput for anything it did not make."""
    try:
        decoded = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError):
        decoded = None
    if (not isinstance(decoded, list) or len(decoded) != parts
            or not all(isinstance(p, str) and forbidden_control(p) is None for p in decoded)):
        raise InvalidInput("cursor is not one this service gave out; start again without it")
    return tuple(decoded)
