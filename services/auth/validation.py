"""Rules for what people type when they register. Pure functions; InvalidInput names the rule."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets

from chorus.auth.errors import InvalidInput
from chorus.common.names import name_problem
from chorus.common.text import describe_control, forbidden_control

__all__ = ["USERNAME_MIN_CHARS", "USERNAME_MAX_CHARS", "PASSWORD_MIN_CHARS", "PASSWORD_MAX_CHARS",
           "DISPLAY_NAME_MAX_CHARS", "MAX_ACCOUNT_IDS_PER_CALL", "check_username", "check_login_name", "username_key",
           "check_password", "check_display_name", "account_ids", "check_external_id", "external_username",
           "EXTERNAL_ID_MAX_CHARS"]

USERNAME_MIN_CHARS = 3
USERNAME_MAX_CHARS = 32
PASSWORD_MIN_CHARS = 8
PASSWORD_MAX_CHARS = 128   # argon2 takes any length; this bounds the work a request can ask for
DISPLAY_NAME_MAX_CHARS = 64
MAX_ACCOUNT_IDS_PER_CALL = 1000  # GetAccounts; bounds one query's parameters and one reply's size
EXTERNAL_ID_MAX_CHARS = 256  # a site's issuer name and its user ids (the columns' width)
_SLUG_CHARS = 12  # of the subject, in a derived username
_HASH_CHARS = 10  # base32 characters of the pair's hash: 50 bits

_USERNAME = re.compile(r"[A-Za-z0-9_.\-]+")
_USERNAME_RULE = (f"username must be {USERNAME_MIN_CHARS}-{USERNAME_MAX_CHARS} characters: "
                  "letters, digits, '_', '.', '-'")


def check_username(username: str) -> str:
    if not (USERNAME_MIN_CHARS <= len(username) <= USERNAME_MAX_CHARS) or not _USERNAME.fullmatch(username):
        raise InvalidInput(_USERNAME_RULE)
    return username


def check_login_name(username: str) -> str:
    """A username as typed at login: any text (a wrong one is just a failed login) except
    control characters, which no username holds and PostgreSQL cannot even compare (NUL)."""
    if (char := forbidden_control(username)) is not None:
        raise InvalidInput(describe_control("username", char))
    return username


def username_key(username: str) -> str:
    """The form usernames are unique in: ignoring case."""
    return username.lower()


def check_password(password: str) -> str:
    if len(password) < PASSWORD_MIN_CHARS:
        raise InvalidInput(f"password must be at least {PASSWORD_MIN_CHARS} characters")
    if len(password) > PASSWORD_MAX_CHARS:
        raise InvalidInput(f"password must be at most {PASSWORD_MAX_CHARS} characters")
    return password


def check_display_name(display_name: str, *, default: str) -> str:
    """The display name stripped, or ``default`` when empty; the rules of chorus.common.names
    (no control or bidi characters, something visible, no mixed-script look-alikes)."""
    name = display_name.strip()
    if not name:
        return default
    if len(name) > DISPLAY_NAME_MAX_CHARS:
        raise InvalidInput(f"display name must be at most {DISPLAY_NAME_MAX_CHARS} characters")
    if (problem := name_problem(name, "display name")) is not None:
        raise InvalidInput(problem)
    return name


def account_ids(ids) -> list[str]:
    """The ids to look up for GetAccounts: in the order given, empty ones and repeats dropped.

    More than MAX_ACCOUNT_IDS_PER_CALL ids (counted as sent) is refused rather than cut, so a
    caller never mistakes a truncated answer for "those accounts do not exist".
    """
    if len(ids) > MAX_ACCOUNT_IDS_PER_CALL:
        raise InvalidInput(f"at most {MAX_ACCOUNT_IDS_PER_CALL} ids per call, got {len(ids)}")
    for account_id in ids:
        if (char := forbidden_control(account_id)) is not None:
            raise InvalidInput(describe_control("an account id", char))
    return list(dict.fromkeys(account_id for account_id in ids if account_id))


def check_external_id(value: str, field: str) -> str:
    """A site's issuer name or user id (subject): 1-256 characters, no control characters."""
    if not value or len(value) > EXTERNAL_ID_MAX_CHARS:
        raise InvalidInput(f"{field} must be 1-{EXTERNAL_ID_MAX_CHARS} characters")
    if (char := forbidden_control(value)) is not None:
        raise InvalidInput(describe_control(field, char))
    return value


def external_username(issuer: str, subject: str, attempt: int = 0) -> str:
    """The username of a site's user: the subject's username-safe characters (some of them) and a
    hash of the (issuer, subject) pair, so two sites' "42"s differ, e.g. ``42.k3jx5qpa2e``.
    Anyone can compute it and register it first: each later ``attempt`` takes a random suffix.
    Always passes ``check_username``."""
    slug = "".join(c for c in subject if c.isascii() and (c.isalnum() or c in "_-"))[:_SLUG_CHARS] or "user"
    if attempt == 0:
        digest = hashlib.sha256(f"{issuer}\n{subject}".encode()).digest()
    else:
        digest = secrets.token_bytes(16)
    suffix = base64.b32encode(digest).decode().lower()[:_HASH_CHARS]
    return check_username(f"{slug}.{suffix}")
