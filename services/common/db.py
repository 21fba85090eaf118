"""SQL engines for the services' storage modules.

SQLite (the embedded default) is tuned for a server: WAL so readers never
block the writer, a busy timeout instead of instant "database is locked", and
connections usable from the gRPC worker threads. SQL parameters (password
hashes, tokens' ids) are kept out of error messages, which end up in logs. PostgreSQL URLs written the
usual way (postgresql://...) are routed to the psycopg 3 driver we ship.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlmodel import create_engine

__all__ = ["create_db_engine", "sqlite_url", "translate_database_errors", "SQLITE_BUSY_TIMEOUT_MS"]

SQLITE_BUSY_TIMEOUT_MS = 5000


def sqlite_url(data_dir: Path, name: str) -> str:
    """The URL of the SQLite file ``name.db`` under ``data_dir`` (created if missing)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{(data_dir / f'{name}.db').resolve()}"


def create_db_engine(url: str) -> Engine:
    """An engine for ``url``; raises ``ValueError`` naming the problem for a bad URL."""
    try:
        parsed = make_url(url)
    except Exception as exc:  # sqlalchemy raises ArgumentError with a terse text
        raise ValueError(f"invalid database URL {url!r}: {exc}") from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        engine = create_engine(parsed, connect_args={"check_same_thread": False}, hide_parameters=True)
        event.listen(engine, "connect", _tune_sqlite)
        return engine
    if backend == "postgresql":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        return create_engine(parsed, pool_pre_ping=True, hide_parameters=True)
    raise ValueError(f"unsupported database {backend!r} in DATABASE_URL: use sqlite:/// or postgresql://")


def _tune_sqlite(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


# "Cannot reach / locked / timed out": the database's fault, retryable. Anything
# else raised by SQLAlchemy is a bug of ours and must stay visible as one.
UNAVAILABLE_ERRORS: tuple[type[Exception], ...] = (OperationalError, PoolTimeoutError)


def translate_database_errors(unavailable: type[Exception], message: str, log: logging.Logger, *,
                              also: tuple[type[Exception], ...] = ()):
    """A decorator for store methods: database outages (and ``also``) become ``unavailable(message)``."""
    caught = UNAVAILABLE_ERRORS + also

    def decorate(method):
        @functools.wraps(method)
        def wrapper(*args, **kwargs):
            try:
                return method(*args, **kwargs)
            except caught as exc:
                log.warning("%s in %s: %s", message, method.__name__, exc)
                raise unavailable(message) from exc
        return wrapper
    return decorate
