"""What can go wrong in the membership service, split by whose fault it is.

    MembershipError
    ├── CallerError                 the request cannot succeed as sent
    │   ├── InvalidInput            -> INVALID_ARGUMENT  (bad name, bad id, bad limit)
    │   ├── GroupNotFound           -> NOT_FOUND
    │   ├── AccountNotFound         -> NOT_FOUND         (auth knows no such account)
    │   ├── GroupNameTaken          -> ALREADY_EXISTS    (unique ignoring case and look-alikes)
    │   └── LimitReached            -> FAILED_PRECONDITION
    │       ├── GroupFull           ("group has reached N members")
    │       └── TooManyGroups       ("an account may join at most N groups")
    ├── StorageUnavailable          -> UNAVAILABLE       (our side: the database; retryable)
    └── AuthUnavailable             -> UNAVAILABLE       (peer: auth could not be asked; retryable)

The store raises these; the servicer maps them to a gRPC status in one place.
Messages are written for the person at the other end, so they never include
SQL or driver text.
"""

from __future__ import annotations

__all__ = [
    "MembershipError",
    "CallerError",
    "InvalidInput",
    "GroupNotFound",
    "AccountNotFound",
    "GroupNameTaken",
    "LimitReached",
    "GroupFull",
    "TooManyGroups",
    "StorageUnavailable",
    "AuthUnavailable",
]


class MembershipError(Exception):
    """Base of every error the membership service reports on purpose."""


class CallerError(MembershipError):
    """The caller asked for something that cannot be done; retrying the same request won't help."""


class InvalidInput(CallerError):
    """A field is malformed (empty, too long, forbidden characters, out of range)."""


class GroupNotFound(CallerError):
    def __init__(self, group_id: str) -> None:
        super().__init__(f"no group with id {group_id!r}")
        self.group_id = group_id


class AccountNotFound(CallerError):
    def __init__(self, account_id: str) -> None:
        super().__init__(f"no account with id {account_id!r}")
        self.account_id = account_id


class GroupNameTaken(CallerError):
    def __init__(self, name: str, existing: str | None = None) -> None:
        if existing is None or existing == name:
            super().__init__(f"a group named {name!r} already exists")
        else:
            super().__init__(f"a group named {existing!r} already exists, and {name!r} looks the same")
        self.name = name


class LimitReached(CallerError):
    """A configured size limit would be exceeded."""


class GroupFull(LimitReached):
    def __init__(self, limit: int) -> None:
        super().__init__(f"group has reached {limit} members")
        self.limit = limit


class TooManyGroups(LimitReached):
    def __init__(self, limit: int) -> None:
        super().__init__(f"an account may join at most {limit} groups")
        self.limit = limit


class StorageUnavailable(MembershipError):
    """The database could not be reached or is locked; the request may succeed later."""


class AuthUnavailable(MembershipError):
    """The auth service could not say whether an account exists; the request may succeed later."""
