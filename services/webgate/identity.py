"""Who a bearer token names: one of Chorus's own tokens (the auth service checks it) or a site's
token (site_tokens.py checks it here; auth then finds or creates that site user's account).

The HTTP API and the WebSocket (``auth`` and ``refresh`` frames) both come here, so a site token
is accepted wherever a Chorus token is. A refused site token creates nothing: the account is
resolved only after every check passed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from .backends import AuthClient
from .site_tokens import SiteTokens, is_site_token

__all__ = ["Identity", "Identities"]


@dataclass(frozen=True)
class Identity:
    user: dict           # {"id", "username", "display_name"}
    expires_at_ms: int   # when the token stops being valid (Unix ms)
    token_id: str        # what a logout revokes; "" for a site token (it ends only at its exp)
    site: str | None = None  # the issuer, for a site token

    @property
    def account_id(self) -> str:
        return self.user["id"]


class Identities:
    def __init__(self, auth: AuthClient, sites: SiteTokens, *, clock: Callable[[], float] = time.time) -> None:
        self._auth = auth
        self._sites = sites
        self._clock = clock

    def is_site_token(self, token: str) -> bool:
        return bool(self._sites) and is_site_token(token)

    async def identify(self, token: str) -> Identity:
        """The identity ``token`` proves; Unauthenticated (a SiteTokenRefused naming the check for a
        site token), InvalidArgument (a site's name for its user breaks the name rules) or
        Unavailable otherwise."""
        if not self.is_site_token(token):
            user, expires_at_ms, token_id = await self._auth.authenticate(token)
            return Identity(user, expires_at_ms, token_id)
        # Off the loop: a JWKS at a URL may be fetched (PyJWKClient blocks).
        claims = await asyncio.to_thread(self._sites.verify, token, self._clock())
        user = await self._auth.resolve_external_account(claims.issuer, claims.subject, claims.name)
        return Identity(user, claims.expires_at * 1000, "", site=claims.issuer)
