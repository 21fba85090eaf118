"""What can go wrong in the auth service, split by whose fault it is.

    AuthError
    ├── CallerError
    │   ├── InvalidInput            -> INVALID_ARGUMENT  (bad username, weak password, bad display name)
    │   ├── UsernameTaken           -> ALREADY_EXISTS    (unique ignoring case)
    │   ├── BadCredentials          -> UNAUTHENTICATED   (unknown user or wrong password: one message)
    │   ├── InvalidToken            -> UNAUTHENTICATED   (malformed, bad signature, expired, revoked)
    │   └── TooManyFailedLogins     -> RESOURCE_EXHAUSTED (with trailing metadata retry-after: seconds)
    └── StorageUnavailable          -> UNAVAILABLE       (our side: the database; retryable)

The servicer maps them to a gRPC status in one place. Messages are for people
and never contain a password, a token or SQL.
"""

from __future__ import annotations

__all__ = ["AuthError", "CallerError", "InvalidInput", "UsernameTaken", "BadCredentials",
           "InvalidToken", "TooManyFailedLogins", "StorageUnavailable"]


class AuthError(Exception):
    """Base of every error the auth service reports on purpose."""


class CallerError(AuthError):
    """The request cannot succeed as sent."""


class InvalidInput(CallerError):
    pass


class UsernameTaken(CallerError):
    def __init__(self, username: str) -> None:
        super().__init__(f"the username {username!r} is taken")


class BadCredentials(CallerError):
    def __init__(self) -> None:
        super().__init__("wrong username or password")


class InvalidToken(CallerError):
    pass


class TooManyFailedLogins(CallerError):
    def __init__(self, retry_after_secs: float, *, known_device: bool = False) -> None:
        super().__init__("too many failed logins from this device; try again later" if known_device else
                         "too many failed logins for this account from unknown devices; try again later "
                         "(or from a device you logged in from before)")
        self.retry_after_secs = retry_after_secs


class StorageUnavailable(AuthError):
    pass
