"""`chorus webgate`: serve HTTP and WebSockets until SIGINT/SIGTERM.

Once serving it writes its readiness line (chorus.common.readiness) on stdout:
``CHORUS-READY {"service": "webgate", "pid": ..., "http": "http://HOST:PORT"}``.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from aiohttp import web

from chorus.common import readiness
from chorus.common.config import join_host_port
from chorus.common.curve import ClientCurve, KeysError

from .app import create_app
from .config import Settings

__all__ = ["run", "serve"]


def run(settings: Settings) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s webgate %(levelname)s %(message)s")
    try:
        import uvloop
    except ImportError:
        return asyncio.run(serve(settings))
    return uvloop.run(serve(settings))


async def serve(settings: Settings) -> int:
    # Handlers first: a SIGTERM arriving right after "listening" must still stop us cleanly.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        curve = ClientCurve.for_service(settings.keys_dir, settings.insecure_plaintext)
    except KeysError as exc:
        print(f"webgate: {exc}", file=sys.stderr)
        return 2
    runner = web.AppRunner(create_app(settings, curve=curve), access_log=None,
                           shutdown_timeout=settings.shutdown_grace_secs)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port)
    try:
        await site.start()
    except OSError as exc:
        print(f"webgate: cannot listen on {settings.host}:{settings.port}: {exc}", file=sys.stderr)
        await runner.cleanup()
        return 2
    url = "http://" + join_host_port(*runner.addresses[0][:2])
    print(f"webgate listening on {url}", file=sys.stderr, flush=True)
    readiness.announce("webgate", settings.ready_file, http=url)
    await stop.wait()
    await runner.cleanup()
    return 0
