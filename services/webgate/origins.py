"""Which web pages may talk to this gateway: its own, and the origins in ``--allowed-origins``.

- WebSocket upgrades (``check_websocket_origin``): a browser always sends ``Origin``; one that
  is neither the gateway's own (the ``Host`` the browser asked for, so it holds behind a proxy
  that passes ``Host`` on) nor allowed is refused with 403 before the upgrade, so a page of
  another site cannot open a socket with a visitor's token. The scheme is not compared: behind
  a TLS-terminating proxy the gateway cannot always know it. No ``Origin`` means no browser
  (a backend, a test client): nothing to protect against, allowed.
- The HTTP API (``cross_origin``): pages of allowed origins may call ``/api/`` with a bearer
  token (CORS: preflights answered, ``Access-Control-Allow-Origin`` on the answers). Never with
  credentials: cookies (the device cookie) stay same-site.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from aiohttp import web

from .errors import Forbidden

__all__ = ["origin_allowed", "check_websocket_origin", "cross_origin", "PREFLIGHT_MAX_AGE_SECS"]

PREFLIGHT_MAX_AGE_SECS = 600
_API = "/api/"


def origin_allowed(origin: str | None, host: str | None, allowed: tuple[str, ...]) -> bool:
    if origin is None:
        return True
    origin = origin.strip().lower()
    if origin in allowed:
        return True
    split = urlsplit(origin)
    return split.scheme in ("http", "https") and bool(host) and split.netloc == host.lower()


def check_websocket_origin(request: web.Request, allowed: tuple[str, ...]) -> None:
    origin = request.headers.get("Origin")
    if not origin_allowed(origin, request.headers.get("Host"), allowed):
        raise Forbidden(f"WebSockets from pages of {origin[:100]!r} are not allowed here "
                        "(not this site, nor one of its --allowed-origins)")


def cross_origin(allowed: tuple[str, ...]):
    """The CORS middleware for ``allowed`` (a no-op when there are none)."""

    @web.middleware
    async def middleware(request: web.Request, handler):
        origin = (request.headers.get("Origin") or "").lower()
        if not allowed or origin not in allowed or not request.path.startswith(_API):
            return await handler(request)
        if request.method == "OPTIONS":
            response = web.Response(status=204, headers={
                "Access-Control-Allow-Methods": "GET, POST",
                "Access-Control-Allow-Headers": "Authorization, Content-Type",
                "Access-Control-Max-Age": str(PREFLIGHT_MAX_AGE_SECS)})
        else:
            response = await handler(request)
        response.headers["Access-Control-Allow-Origin"] = request.headers["Origin"]
        response.headers["Vary"] = "Origin"
        return response

    return middleware
