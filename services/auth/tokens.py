"""Signed, expiring tokens: HS256 JWTs (PyJWT), both signed with the token key.

- Session tokens (``TokenSigner``): sub (account id), jti, iat, exp. The
  signature and expiry are checked here; revocation (logout) is a lookup of
  the jti in storage, done by the servicer.
- Device tokens (``DeviceTokens``): aud "chorus-device", sub (the username key),
  did (a random device id), iat, exp. OWASP's "device cookie": proof that this
  device logged in as this username before, so its failed logins are counted
  per device instead of against the account's lockout. The audience keeps the
  two kinds apart: PyJWT refuses a token with an audience where none is
  expected (a device token is never a session token) and one without where one
  is required (a session token is never a device token).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

import jwt

from chorus.auth.errors import InvalidToken

__all__ = ["TokenSigner", "Claims", "DeviceTokens", "MIN_KEY_BYTES", "DEVICE_AUDIENCE"]

MIN_KEY_BYTES = 32
ALGORITHM = "HS256"
DEVICE_AUDIENCE = "chorus-device"


@dataclass(frozen=True)
class Claims:
    account_id: str
    token_id: str
    expires_at: int  # Unix seconds


class _Signed:
    """A key, a lifetime and a clock: what both kinds of token are made with."""

    _kind = "token"

    def __init__(self, key: bytes, *, ttl_secs: int, clock: Callable[[], float] = time.time) -> None:
        if len(key) < MIN_KEY_BYTES:
            raise ValueError(f"the token signing key must be at least {MIN_KEY_BYTES} bytes, got {len(key)}")
        if ttl_secs <= 0:
            raise ValueError(f"the {self._kind} lifetime must be > 0 seconds, got {ttl_secs}")
        self._key = key
        self._ttl_secs = ttl_secs
        self._clock = clock


class TokenSigner(_Signed):

    def issue(self, account_id: str, now: float | None = None) -> tuple[str, Claims]:
        """A new token for ``account_id`` and its claims; ``now`` (Unix seconds) defaults to the clock."""
        now = int(self._clock() if now is None else now)
        claims = Claims(account_id, secrets.token_urlsafe(16), now + self._ttl_secs)
        token = jwt.encode({"sub": account_id, "jti": claims.token_id, "iat": now, "exp": claims.expires_at},
                           self._key, algorithm=ALGORITHM)
        return token, claims

    def verify(self, token: str, now: float | None = None) -> Claims:
        """The claims of a token we signed that has not expired at ``now``; InvalidToken otherwise."""
        now = self._clock() if now is None else now
        try:
            # Time is checked against ``now``, not PyJWT's clock: its exp check is
            # replaced below, and its iat check ("issued in the future") is off, or a
            # replica whose clock is a second behind the issuer's would refuse fresh tokens.
            payload = jwt.decode(token, self._key, algorithms=[ALGORITHM],
                                 options={"verify_exp": False, "verify_iat": False,
                                          "require": ["sub", "jti", "exp"]})
        except jwt.InvalidTokenError:
            raise InvalidToken("invalid token; log in again") from None
        exp, sub, jti = payload["exp"], payload["sub"], payload["jti"]
        if not isinstance(exp, int) or not isinstance(sub, str) or not isinstance(jti, str):
            raise InvalidToken("invalid token; log in again")
        if exp <= now:
            raise InvalidToken("token expired; log in again")
        return Claims(sub, jti, exp)


class DeviceTokens(_Signed):
    """Issues and checks device tokens (see the module docstring). Pure but for the clock."""

    _kind = "device token"

    def issue(self, username_key: str, device_id: str | None = None) -> tuple[str, int]:
        """A token naming ``username_key`` and ``device_id`` (a new random one when None),
        and its expiry (Unix seconds)."""
        now = int(self._clock())
        expires_at = now + self._ttl_secs
        token = jwt.encode({"aud": DEVICE_AUDIENCE, "sub": username_key,
                            "did": device_id or secrets.token_urlsafe(16), "iat": now, "exp": expires_at},
                           self._key, algorithm=ALGORITHM)
        return token, expires_at

    def device_of(self, token: str, username_key: str) -> str | None:
        """The device id of a valid, unexpired ``token`` issued for ``username_key``; None for
        anything else (empty, tampered, expired, another username, a session token)."""
        if not token:
            return None
        try:
            payload = jwt.decode(token, self._key, algorithms=[ALGORITHM], audience=DEVICE_AUDIENCE,
                                 options={"verify_exp": False, "verify_iat": False,
                                          "require": ["aud", "sub", "did", "exp"]})
        except jwt.InvalidTokenError:
            return None
        exp, sub, did = payload["exp"], payload["sub"], payload["did"]
        if not isinstance(exp, int) or not isinstance(sub, str) or not isinstance(did, str):
            return None
        if exp <= self._clock() or sub != username_key or not did:
            return None
        return did
