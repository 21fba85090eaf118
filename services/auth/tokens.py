"""Signed, expiring session tokens: HS256 JWTs (PyJWT) with sub, jti, iat, exp.

The signature and expiry are checked here; revocation (logout) is a lookup of
the jti in storage, done by the servicer.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

import jwt

from chorus.auth.errors import InvalidToken

__all__ = ["TokenSigner", "Claims", "MIN_KEY_BYTES"]

MIN_KEY_BYTES = 32
ALGORITHM = "HS256"


@dataclass(frozen=True)
class Claims:
    account_id: str
    token_id: str
    expires_at: int  # Unix seconds


class TokenSigner:
    def __init__(self, key: bytes, *, ttl_secs: int, clock: Callable[[], float] = time.time) -> None:
        if len(key) < MIN_KEY_BYTES:
            raise ValueError(f"the token signing key must be at least {MIN_KEY_BYTES} bytes, got {len(key)}")
        self._key = key
        self._ttl_secs = ttl_secs
        self._clock = clock

    def issue(self, account_id: str) -> tuple[str, Claims]:
        now = int(self._clock())
        claims = Claims(account_id, secrets.token_urlsafe(16), now + self._ttl_secs)
        token = jwt.encode({"sub": account_id, "jti": claims.token_id, "iat": now, "exp": claims.expires_at},
                           self._key, algorithm=ALGORITHM)
        return token, claims

    def verify(self, token: str) -> Claims:
        try:
            # Expiry is checked against our injected clock, not PyJWT's.
            payload = jwt.decode(token, self._key, algorithms=[ALGORITHM],
                                 options={"verify_exp": False, "require": ["sub", "jti", "exp"]})
        except jwt.InvalidTokenError:
            raise InvalidToken("invalid token; log in again") from None
        exp, sub, jti = payload["exp"], payload["sub"], payload["jti"]
        if not isinstance(exp, int) or not isinstance(sub, str) or not isinstance(jti, str):
            raise InvalidToken("invalid token; log in again")
        if exp <= self._clock():
            raise InvalidToken("token expired; log in again")
        return Claims(sub, jti, exp)
