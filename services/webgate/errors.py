"""What can go wrong at the gateway, and how each is shown to the person.

    ApiError                    every error a client sees; has `status` (HTTP) and `code`
    +-- BadJson                 400  caller: body or frame is not a JSON object
    +-- InvalidArgument         400  caller: a field is missing, mistyped or breaks a rule
    +-- UnknownOp               400  caller: a WebSocket frame with an unknown op
    +-- Unauthenticated         401  caller: no/bad/expired/revoked token, wrong password
    |   +-- SiteTokenRefused    401  caller: a site's token failed a check; the subclass (and the
    |       |                        message, which a WebSocket close carries) names which
    |       +-- MalformedToken, AlgNone, AlgNotAccepted, UnknownIssuer, UnknownKid, BadSignature,
    |           TokenExpired, NotYetValid, LifetimeTooLong, WrongAudience, MissingClaim, BadClaim
    +-- Forbidden               403  caller: not allowed (e.g. not a member)
    +-- NotFound                404  caller: unknown group or route
    +-- AlreadyExists           409  caller: username or group name taken
    +-- FailedPrecondition      409  caller: a limit such as members per group
    +-- TooLarge                413  caller: body or text over its limit
    +-- RateLimited             429  caller: slow down (``retry_after_secs``: when to try again)
    +-- Unavailable             503  peer: a backend service or the broker is down
        +-- SiteKeysUnavailable 503  peer: a site's JWKS URL did not answer

gRPC errors from the backends are mapped to these once, in `from_grpc`
(RESOURCE_EXHAUSTED's ``retry-after`` trailing metadata, in seconds, becomes
``retry_after_secs``). HTTP answers use `status` (and a Retry-After header for
RateLimited); WebSocket error frames use `code` (and ``retry_after_ms``).
"""

from __future__ import annotations

import math

import grpc

__all__ = [
    "ApiError", "BadJson", "InvalidArgument", "UnknownOp", "Unauthenticated", "Forbidden",
    "NotFound", "AlreadyExists", "FailedPrecondition", "TooLarge", "RateLimited",
    "Unavailable", "NotMember", "from_grpc",
    "SiteTokenRefused", "MalformedToken", "AlgNone", "AlgNotAccepted", "UnknownIssuer", "UnknownKid",
    "BadSignature", "TokenExpired", "NotYetValid", "LifetimeTooLong", "WrongAudience", "MissingClaim",
    "BadClaim", "SiteKeysUnavailable",
]


class ApiError(Exception):
    status = 500
    code = "internal"

    def __init__(self, message: str, *, ref: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.ref = ref  # the client's ref of the WebSocket frame this answers, if any

    def body(self) -> dict:
        return {"error": {"code": self.code, "message": self.message}}


class BadJson(ApiError):
    status, code = 400, "bad_json"


class InvalidArgument(ApiError):
    status, code = 400, "invalid_argument"


class UnknownOp(ApiError):
    status, code = 400, "unknown_op"


class Unauthenticated(ApiError):
    status, code = 401, "unauthenticated"


class SiteTokenRefused(Unauthenticated):
    """A site token that failed one check. Messages stay short: a WebSocket close reason
    carries them (at most 123 bytes)."""


class MalformedToken(SiteTokenRefused):
    pass


class AlgNone(SiteTokenRefused):
    pass


class AlgNotAccepted(SiteTokenRefused):
    pass


class UnknownIssuer(SiteTokenRefused):
    pass


class UnknownKid(SiteTokenRefused):
    pass


class BadSignature(SiteTokenRefused):
    pass


class TokenExpired(SiteTokenRefused):
    pass


class NotYetValid(SiteTokenRefused):
    pass


class LifetimeTooLong(SiteTokenRefused):
    pass


class WrongAudience(SiteTokenRefused):
    pass


class MissingClaim(SiteTokenRefused):
    pass


class BadClaim(SiteTokenRefused):
    pass


class Forbidden(ApiError):
    status, code = 403, "forbidden"


class NotMember(Forbidden):
    code = "not_member"


class NotFound(ApiError):
    status, code = 404, "not_found"


class AlreadyExists(ApiError):
    status, code = 409, "already_exists"


class FailedPrecondition(ApiError):
    status, code = 409, "failed_precondition"


class TooLarge(ApiError):
    status, code = 413, "too_large"


class RateLimited(ApiError):
    status, code = 429, "rate_limited"

    def __init__(self, message: str, *, retry_after_secs: float | None = None, ref: str | None = None) -> None:
        super().__init__(message, ref=ref)
        self.retry_after_secs = retry_after_secs

    def retry_after_header(self) -> dict[str, str]:
        """Retry-After in whole seconds, rounded up (never 0: "now" would invite a hot loop)."""
        if self.retry_after_secs is None:
            return {}
        return {"Retry-After": str(max(1, math.ceil(self.retry_after_secs)))}


class Unavailable(ApiError):
    status, code = 503, "unavailable"


class SiteKeysUnavailable(Unavailable):
    pass


_FROM_GRPC: dict[grpc.StatusCode, type[ApiError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
    grpc.StatusCode.PERMISSION_DENIED: Forbidden,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExists,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPrecondition,
    grpc.StatusCode.RESOURCE_EXHAUSTED: RateLimited,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: Unavailable,
}


def from_grpc(exc: grpc.aio.AioRpcError, service: str) -> ApiError:
    """The ApiError a person should see for a backend's gRPC error."""
    kind = _FROM_GRPC.get(exc.code())
    if kind is None:
        return ApiError(f"{service} failed: {exc.code().name.lower()}")
    if kind is Unavailable:
        return Unavailable(f"the {service} service is unavailable, try again")
    if kind is RateLimited:
        return RateLimited(exc.details() or "too many requests", retry_after_secs=_retry_after(exc))
    return kind(exc.details() or exc.code().name.lower())


def _retry_after(exc: grpc.aio.AioRpcError) -> float | None:
    for key, value in exc.trailing_metadata() or ():
        if key == "retry-after":
            try:
                return max(0.0, float(value))
            except ValueError:
                return None
    return None
