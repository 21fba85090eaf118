"""Wiring: build the aiohttp application from settings and its dependencies."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from aiohttp import WSCloseCode, web

from chorus.common.ids import new_id
from chorus.common.ratelimit import KeyedLimiter, Rate

from chorus.common.brokerlink import AsyncBrokerLink
from chorus.common.curve import ClientCurve
from chorus.common.grpctls import ClientTls, aio_channel

from .backends import AuthClient, MembershipClient
from .broker import Publications, ZmqBroker
from .config import Settings
from .deps import DEPS, LIMITS, Deps, SocketLimits
from .http_api import error_middleware, routes
from .hub import Hub
from .listener import track_requests
from .security import add_security_headers
from .ws import websocket

__all__ = ["create_app", "STATIC_DIR", "STATIC_FILES", "OPENAPI_PATH"]

STATIC_DIR = Path(__file__).parent / "static"
# Only these files are served (never a path taken from the request). The page is native ES
# modules (docs/architecture.md, "The page"): each module it imports must be listed here.
# The OpenAPI 3 description of the HTTP API is kept by hand beside the page;
# tests/webgate/test_openapi.py holds it to the routes registered here.
PAGE_MODULES = ("main.js", "state.js", "model.js", "frames.js", "groupbox.js", "socket.js", "api.js",
                "dom.js", "render.js", "panels.js", "auth.js")
STATIC_FILES = {"/": "index.html", "/app.css": "app.css", "/favicon.svg": "favicon.svg",
                **{f"/{name}": name for name in PAGE_MODULES},
                "/api/openapi.json": "openapi.json"}
OPENAPI_PATH = STATIC_DIR / "openapi.json"


def create_app(settings: Settings, *, curve: ClientCurve | None = None,
               tls: ClientTls | None = None) -> web.Application:
    """The application; backends connect on startup and close on cleanup. ``curve``: this
    gateway's keys for the broker, ``tls``: its certificate for auth and membership (None:
    plaintext, for --insecure-plaintext)."""
    app = web.Application(middlewares=[track_requests, error_middleware], client_max_size=settings.max_body_bytes)
    app[LIMITS] = SocketLimits.from_settings(settings)
    add_security_headers(app)
    app.add_routes(routes)
    app.router.add_get("/ws", websocket)
    app.router.add_get("/healthz", _healthz)
    for path, name in STATIC_FILES.items():
        app.router.add_get(path, _static(STATIC_DIR / name))
    app.cleanup_ctx.append(lambda app: _backends(app, settings, curve, tls))
    app.on_shutdown.append(_going_away)
    return app


async def _backends(app: web.Application, settings: Settings, curve: ClientCurve | None, tls: ClientTls | None):
    auth_channel = aio_channel(settings.auth_address, tls)
    membership_channel = aio_channel(settings.membership_address, tls)
    link = AsyncBrokerLink(settings.broker_router, client_id=new_id("gw"),
                           timeout_secs=settings.backend_timeout_secs, heartbeat_secs=settings.heartbeat_secs,
                           curve=curve)
    publications = Publications(settings.broker_pub, curve=curve)
    broker = ZmqBroker(link, publications)
    hub = Hub(broker)
    await link.start()
    publications.start()
    tasks = [asyncio.create_task(publications.run(hub), name="broker-publications"),
             asyncio.create_task(link.keep_alive(on_fresh=hub.broker_restarted), name="broker-heartbeat"),
             asyncio.create_task(hub.run_events(), name="membership-events")]
    app[DEPS] = Deps(
        settings=settings,
        auth=AuthClient(auth_channel, timeout_secs=settings.backend_timeout_secs),
        membership=MembershipClient(membership_channel, timeout_secs=settings.backend_timeout_secs),
        broker=broker,
        hub=hub,
        login_limiter=KeyedLimiter(Rate.per_window(settings.login_failures_per_ip,
                                                   settings.login_failure_window_secs)),
        register_limiter=KeyedLimiter(Rate.per_window(settings.registrations_per_ip,
                                                      settings.registration_window_secs)),
    )
    yield
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    await link.close()
    publications.close()
    await auth_channel.close()
    await membership_channel.close()


async def _going_away(app: web.Application) -> None:
    """Close every WebSocket with 1001 so pages reconnect (elsewhere) at once."""
    for ws in list(app[DEPS].sockets):
        with contextlib.suppress(Exception):
            await ws.close(code=WSCloseCode.GOING_AWAY, message=b"going away")


async def _healthz(_request: web.Request) -> web.Response:
    """Liveness for container health checks and load balancers: this process serves HTTP."""
    return web.json_response({"status": "ok"})


def _static(path: Path):
    content_type = {".html": "text/html", ".css": "text/css", ".js": "text/javascript",
                    ".json": "application/json", ".svg": "image/svg+xml"}[path.suffix]

    async def handler(_request: web.Request) -> web.Response:
        return web.Response(body=path.read_bytes(), content_type=content_type, charset="utf-8",
                            headers={"Cache-Control": "no-cache"})
    return handler
