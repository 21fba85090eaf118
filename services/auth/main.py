"""The auth process: open the database, bind, serve until SIGINT/SIGTERM.

Once serving it writes its readiness line (chorus.common.readiness) on stdout:
``CHORUS-READY {"service": "auth", "pid": ..., "grpc": "HOST:PORT"}``.

Exit codes: 0 after a signalled shutdown, 1 when the database cannot be
opened, 2 for a bad database URL, unusable keys or an address that cannot be bound.
"""

from __future__ import annotations

import sys

from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from chorus.auth.config import Settings
from chorus.auth.passwords import Passwords
from chorus.auth.server import create_server
from chorus.auth.servicer import AuthServicer
from chorus.auth.storage import AuthStore, migrate
from chorus.auth.tokens import DeviceTokens, TokenSigner
from chorus.common import readiness
from chorus.common.config import join_host_port, parse_host_port
from chorus.common.db import create_db_engine
from chorus.common.grpcserver import serve_until_signalled
from chorus.common.grpctls import ServerTls
from chorus.common.keysdir import KeysError

__all__ = ["run"]


def run(settings: Settings) -> int:
    try:
        tls = ServerTls.for_service(settings.keys_dir, settings.insecure_plaintext)
    except KeysError as exc:
        return _fail(str(exc), code=2)
    try:
        engine = create_db_engine(settings.database_url)
    except ValueError as exc:
        return _fail(str(exc), code=2)
    try:
        migrate(engine)
        store = AuthStore(engine)
        store.purge_expired_revocations()
        servicer = AuthServicer(store, Passwords(), TokenSigner(settings.token_key,
                                                                ttl_secs=settings.token_ttl_secs),
                                DeviceTokens(settings.token_key, ttl_secs=settings.device_token_ttl_secs),
                                login_failures=settings.login_failures,
                                device_login_failures=settings.device_login_failures)
        try:
            server, port = create_server(settings.listen, servicer, max_workers=settings.max_workers, tls=tls)
        except OSError as exc:
            return _fail(str(exc), code=2)
        address = join_host_port(parse_host_port(settings.listen)[0], port)
        serve_until_signalled(server, grace_secs=settings.grace_secs, announce=lambda: _announce(settings, address))
        return 0
    except OperationalError as exc:
        safe_url = make_url(settings.database_url).render_as_string(hide_password=True)
        return _fail(f"cannot open database {safe_url}: {exc.orig or exc}", code=1)
    finally:
        engine.dispose()


def _announce(settings: Settings, address: str) -> None:
    print(f"auth listening on {address}", file=sys.stderr, flush=True)
    readiness.announce("auth", settings.ready_file, grpc=address)


def _fail(message: str, *, code: int) -> int:
    print(f"auth: {message}", file=sys.stderr, flush=True)
    return code
