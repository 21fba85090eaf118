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
from .cluster_broker import ClusterBroker
from .config import Settings
from .deps import DEPS, LIMITS, Deps, SocketLimits
from .http_api import error_middleware, routes
from .hub import Hub
from .identity import Identities
from .listener import track_requests
from .origins import cross_origin
from .revocations import RevocationPoller, Watched
from .security import add_security_headers
from .site_tokens import SiteTokens
from .ws import websocket

__all__ = ["create_app", "STATIC_DIR", "STATIC_FILES", "SDK_DIR", "SDK_MODULES", "OPENAPI_PATH"]

STATIC_DIR = Path(__file__).parent / "static"
# Only these files are served (never a path taken from the request). The page is native ES
# modules (docs/architecture.md, "The page"): each module it imports must be listed here.
# The OpenAPI 3 description of the HTTP API is kept by hand beside the page;
# tests/webgate/test_openapi.py holds it to the routes registered here.
PAGE_MODULES = ("main.js", "state.js", "model.js", "frames.js", "groupbox.js", "api.js",
                "dom.js", "render.js", "panels.js", "auth.js")
STATIC_FILES = {"/": "index.html", "/app.css": "app.css", "/favicon.svg": "favicon.svg",
                **{f"/{name}": name for name in PAGE_MODULES},
                "/api/openapi.json": "openapi.json"}
OPENAPI_PATH = STATIC_DIR / "openapi.json"
# chorus.js and the widgets (docs/sdk.md), served at /sdk/NAME to this page and to other
# sites' pages: those import them across origins, so the answers allow any origin to read
# them (they are public code; no cookie is involved in fetching a module) and are gzipped.
SDK_DIR = STATIC_DIR / "sdk"
SDK_MODULES = ("chorus.js", "session.js", "socket.js", "tabs.js", "policy.js", "widgets.js")
SDK_HEADERS = {"Access-Control-Allow-Origin": "*", "Cross-Origin-Resource-Policy": "cross-origin"}


def create_app(settings: Settings, *, curve: ClientCurve | None = None,
               tls: ClientTls | None = None, site_tokens: SiteTokens | None = None) -> web.Application:
    """The application; backends connect on startup and close on cleanup. ``curve``: this
    gateway's keys for the broker, ``tls``: its certificate for auth and membership (None:
    plaintext, for --insecure-plaintext). ``site_tokens``:
    the configured sites' keys (site_keys.load_sites; None: no sites)."""
    site_tokens = site_tokens or SiteTokens({}, max_lifetime_secs=settings.site_token_max_lifetime_secs)
    app = web.Application(middlewares=[track_requests, cross_origin(settings.allowed_origins), error_middleware],
                          client_max_size=settings.max_body_bytes)
    app[LIMITS] = SocketLimits.from_settings(settings)
    add_security_headers(app)
    app.add_routes(routes)
    app.router.add_get("/ws", websocket)
    app.router.add_get("/healthz", _healthz)
    for path, name in STATIC_FILES.items():
        app.router.add_get(path, _static(STATIC_DIR / name))
    for name in SDK_MODULES:
        app.router.add_get(f"/sdk/{name}", _static(SDK_DIR / name, SDK_HEADERS, compress=True))
    app.cleanup_ctx.append(lambda app: _backends(app, settings, curve, tls, site_tokens))
    app.on_shutdown.append(_going_away)
    return app


async def _backends(app: web.Application, settings: Settings, curve: ClientCurve | None, tls: ClientTls | None,
                    site_tokens: SiteTokens):
    auth_channel = aio_channel(settings.auth_address, tls)
    membership_channel = aio_channel(settings.membership_address, tls)
    client_id = new_id("gw")

    def make_link(endpoint: str) -> AsyncBrokerLink:
        return AsyncBrokerLink(endpoint, client_id=client_id, timeout_secs=settings.backend_timeout_secs,
                               heartbeat_secs=settings.heartbeat_secs, curve=curve)

    if settings.broker_seeds:  # a cluster: links to every live broker, learnt from the seeds
        publications = Publications(None, curve=curve)
        broker = cluster = ClusterBroker(settings.broker_seeds, publications, make_link=make_link,
                                         retry_secs=settings.broker_retry_secs)
        hub = Hub(broker)
        cluster.on_fresh, cluster.on_moved = hub.broker_restarted, hub.groups_moved
        publications.start()
        await cluster.start()
        tasks = []
    else:
        link = make_link(settings.broker_router)
        publications = Publications(settings.broker_pub, curve=curve)
        broker = ZmqBroker(link, publications)
        hub = Hub(broker)
        await link.start()
        publications.start()
        tasks = [asyncio.create_task(link.keep_alive(on_fresh=hub.broker_restarted), name="broker-heartbeat")]
    auth = AuthClient(auth_channel, timeout_secs=settings.backend_timeout_secs)
    watched = Watched()
    revocations = RevocationPoller(auth, watched, interval_secs=settings.revocation_poll_secs)
    tasks += [asyncio.create_task(publications.run(hub), name="broker-publications"),
              asyncio.create_task(hub.run_events(), name="membership-events"),
              asyncio.create_task(revocations.run(), name="token-revocations")]
    app[DEPS] = Deps(
        settings=settings,
        auth=auth,
        identities=Identities(auth, site_tokens),
        watched=watched,
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
    await (cluster.close() if settings.broker_seeds else link.close())
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


def _static(path: Path, headers: dict[str, str] | None = None, *, compress: bool = False):
    content_type = {".html": "text/html", ".css": "text/css", ".js": "text/javascript",
                    ".json": "application/json", ".svg": "image/svg+xml"}[path.suffix]

    async def handler(_request: web.Request) -> web.Response:
        response = web.Response(body=path.read_bytes(), content_type=content_type, charset="utf-8",
                                headers={"Cache-Control": "no-cache", **(headers or {})})
        if compress:
            response.enable_compression()  # gzip or deflate, when the request accepts one
        return response
    return handler
