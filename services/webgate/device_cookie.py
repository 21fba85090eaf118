"""The device cookie (OWASP "device cookie"): how a browser proves it logged in as a username before.

Auth signs the token (tokens.DeviceTokens) and decides whether to trust it;
the gateway only carries it between the browser and auth's Login. The cookie is
HttpOnly (no script reads it), SameSite=Strict (no other site's page sends it),
Path=/api (the page's own files never carry it), Secure when the browser came
over https (directly, or as a trusted proxy says in X-Forwarded-Proto), and
lives as long as auth's device token (``--device-token-ttl-secs``).
"""

from __future__ import annotations

import time

from aiohttp import web

__all__ = ["DEVICE_COOKIE", "device_token", "set_device_cookie", "came_over_https"]

DEVICE_COOKIE = "chorus_device"
MAX_DEVICE_TOKEN_CHARS = 1024  # ours are ~250; a longer cookie is not ours and is not passed on


def device_token(request: web.Request) -> str:
    """The device cookie's token, or "" when there is none (or it cannot be ours)."""
    token = request.cookies.get(DEVICE_COOKIE, "")
    return token if len(token) <= MAX_DEVICE_TOKEN_CHARS and token.isascii() and token.isprintable() else ""


def set_device_cookie(response: web.StreamResponse, token: str, expires_at_ms: int, *, secure: bool) -> None:
    if not token:
        return
    max_age = max(0, int(expires_at_ms / 1000 - time.time()))
    response.set_cookie(DEVICE_COOKIE, token, max_age=max_age, path="/api", httponly=True,
                        samesite="Strict", secure=secure)


def came_over_https(scheme: str, forwarded_proto: str | None, *, from_trusted_proxy: bool) -> bool:
    """Did the browser use https? The connection's scheme says, unless the peer is a trusted
    proxy: then its X-Forwarded-Proto (the last value, the one that proxy set) does."""
    if from_trusted_proxy and forwarded_proto:
        return forwarded_proto.split(",")[-1].strip().lower() == "https"
    return scheme == "https"
