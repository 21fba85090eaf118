"""`chorus webgate`: serve HTTP and WebSockets until SIGINT/SIGTERM.

Once serving it writes its readiness line (chorus.common.readiness) on stdout:
``CHORUS-READY {"service": "webgate", "pid": ..., "http": "http://HOST:PORT"}``.

At start it raises its open-files limit (RLIMIT_NOFILE) from the soft to the hard limit, as
servers that hold many sockets do, and caps the connections it serves below it
(admission.connection_budget), keeping ``reserved_fds`` for gRPC, ZeroMQ and files.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import signal
import sys
from functools import partial

from aiohttp import web

from chorus.common import readiness
from chorus.common.config import join_host_port
from chorus.common.curve import ClientCurve
from chorus.common.grpctls import ClientTls
from chorus.common.keysdir import KeysError, service_folder

from .admission import Gate, connection_budget
from .app import create_app
from .config import Settings
from .http_api import is_trusted_proxy
from .listener import ConnectionGuard, GuardedSite
from .site_keys import load_sites
from .site_tokens import SiteTokens

__all__ = ["run", "serve"]

UNLIMITED_OPEN_FILES = 1 << 20  # counted as this many when the limit says "unlimited"


def run(settings: Settings) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s webgate %(levelname)s %(message)s")
    try:
        import uvloop
    except ImportError:
        return asyncio.run(serve(settings))
    return uvloop.run(serve(settings))


async def serve(settings: Settings) -> int:
    try:
        gate = _gate(settings, _raise_open_files_limit())
    except ValueError as exc:
        print(f"webgate: {exc}", file=sys.stderr)
        return 2
    # Handlers first: a SIGTERM arriving right after "listening" must still stop us cleanly.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        keys = service_folder(settings.keys_dir, settings.insecure_plaintext)
        curve, tls = (ClientCurve.load(keys), ClientTls.load(keys)) if keys else (None, None)
        sites = load_sites(settings.sites, jwks_cache_secs=settings.site_jwks_cache_secs,
                           fetch_timeout_secs=settings.backend_timeout_secs)
    except (KeysError, ValueError) as exc:
        print(f"webgate: {exc}", file=sys.stderr)
        return 2
    site_tokens = SiteTokens(sites, max_lifetime_secs=settings.site_token_max_lifetime_secs,
                             audience=settings.site_audience)
    runner = web.AppRunner(create_app(settings, curve=curve, tls=tls, site_tokens=site_tokens), access_log=None,
                           shutdown_timeout=settings.shutdown_grace_secs,
                           keepalive_timeout=settings.keepalive_timeout_secs)
    await runner.setup()
    guard = ConnectionGuard(gate, header_timeout_secs=settings.header_timeout_secs,
                            is_exempt=partial(is_trusted_proxy, trusted_proxies=settings.trusted_proxies))
    site = GuardedSite(runner, settings.host, settings.port, guard=guard)
    try:
        await site.start()
    except OSError as exc:
        print(f"webgate: cannot listen on {settings.host}:{settings.port}: {exc}", file=sys.stderr)
        await runner.cleanup()
        return 2
    url = "http://" + join_host_port(*runner.addresses[0][:2])
    print(f"webgate listening on {url} (at most {gate.max_connections} connections)", file=sys.stderr, flush=True)
    readiness.announce("webgate", settings.ready_file, http=url)
    await stop.wait()
    await runner.cleanup()
    return 0


def _raise_open_files_limit() -> int:
    """The soft open-files limit, after raising it to the hard one where allowed. Nothing in the
    gateway uses select(), so descriptors past 1024 are fine."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return UNLIMITED_OPEN_FILES
    if hard != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError) as exc:
            logging.getLogger(__name__).warning("cannot raise the open-files limit from %d to %d: %s",
                                                soft, hard, exc)
    return soft


def _gate(settings: Settings, open_files: int) -> Gate:
    budget = connection_budget(open_files, settings.reserved_fds, settings.max_connections)
    return Gate(max_connections=budget, max_per_address=settings.max_connections_per_address,
                max_refusing=settings.reserved_fds // 2)
