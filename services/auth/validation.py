"""Rules for what people type when they register. Pure functions; InvalidInput names the rule."""

from __future__ import annotations

import re

from chorus.auth.errors import InvalidInput
from chorus.common.names import name_problem
from chorus.common.text import describe_control, forbidden_control

__all__ = ["USERNAME_MIN_CHARS", "USERNAME_MAX_CHARS", "PASSWORD_MIN_CHARS", "PASSWORD_MAX_CHARS",
           "DISPLAY_NAME_MAX_CHARS", "MAX_ACCOUNT_IDS_PER_CALL", "check_username", "check_login_name", "username_key",
           "check_password", "check_display_name", "account_ids"]

USERNAME_MIN_CHARS = 3
USERNAME_MAX_CHARS = 32
PASSWORD_MIN_CHARS = 8
PASSWORD_MAX_CHARS = 128   # argon2 takes any length; this bounds the work a request can ask for
DISPLAY_NAME_MAX_CHARS = 64
MAX_ACCOUNT_IDS_PER_CALL = 1000  # GetAccounts; bounds one query's parameters and one reply's size

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
