"""Security headers on every answer of the gateway: the page, its modules, the API, errors.

The policy allows only this origin's own scripts, styles, images and connections (a same-origin
``ws:``/``wss:`` URL counts as 'self' for connect-src in current browsers; tests/browser checks
the page runs under it without a violation), no framing, no <base> and forms only to us. The page
therefore has no inline script, inline event handler or style attribute: it is ES modules and a
stylesheet, and sets styles only through the CSSOM, which a policy does not restrict.
"""

from __future__ import annotations

from aiohttp import web

__all__ = ["SECURITY_HEADERS", "add_security_headers"]

CONTENT_SECURITY_POLICY = "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",    # a file is only ever what its Content-Type says
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",              # frame-ancestors for browsers that predate it
}


def add_security_headers(app: web.Application) -> None:
    """Stamp every response ``app`` prepares (handlers, middleware errors, 404s, WebSocket
    handshakes) with SECURITY_HEADERS, keeping any a handler set on purpose."""
    app.on_response_prepare.append(_stamp)


async def _stamp(_request: web.Request, response: web.StreamResponse) -> None:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
