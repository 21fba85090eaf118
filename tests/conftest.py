"""Fixtures shared by every suite: the whole stack as real processes on port 0, and
a real database engine per backend for the storage tests.

The ``engine`` fixture runs each storage test twice: on a SQLite file in
tmp_path, and on PostgreSQL in a fresh schema that is dropped afterwards.
PostgreSQL comes from $CHORUS_TEST_POSTGRES_URL (default below); when it is
unreachable those runs are skipped locally but fail when $CI is "true", so CI
cannot go green without having tested PostgreSQL.

The stack is `python -m chorus up` (exactly what a newcomer runs) on loopback,
port 0 wherever it can, with a fresh data directory, started once per test
session; its addresses come from its readiness line (docs/architecture.md,
"Readiness"). Tests isolate themselves by registering their own people and groups.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import aiohttp
import psycopg
import pytest
from sqlalchemy.engine import Engine, make_url

from chat import Api, Person
from processes import Service, clean_env, service_env
from chorus.common import readiness
from chorus.common.db import create_db_engine, sqlite_url
from chorus.common.keys import ensure_keys

STACK_START_TIMEOUT_SECS = 60
WS_AUTH_DEADLINE_SECS = 2  # shorter than the default 10 s so the deadline test is quick
# Smaller than the default 1 MiB so a stalled reader is cut off sooner, yet roomy
# enough (~130 messages of 4 KB) that a busy test process reading normally never is.
MAX_SEND_BUFFER_BYTES = 512 * 1024
RESUME_MAX_MESSAGES = 20  # smaller than the default 200 so the reset test posts few messages


def free_port() -> int:
    """A port nothing listens on right now. Racy (another process may take it before we
    bind): only for the one address that must be known before its service starts, the
    broker's ROUTER, which membership is told first. Everything else binds port 0."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Stack:
    base_url: str
    ws_url: str
    ports: dict
    data_dir: Path
    log_path: Path
    process: subprocess.Popen

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    @property
    def keys(self) -> Path:
        """The internal traffic's keys `chorus up` made (DATA_DIR/keys, its CA included)."""
        return self.data_dir / "keys"


@pytest.fixture(scope="session")
def stack(tmp_path_factory) -> Stack:
    with running_stack(tmp_path_factory.mktemp("stack"), {
        # read by the webgate process
        "CHORUS_WS_AUTH_DEADLINE_SECS": str(WS_AUTH_DEADLINE_SECS),
        "CHORUS_WS_MAX_SEND_BUFFER_BYTES": str(MAX_SEND_BUFFER_BYTES),
        "CHORUS_RESUME_MAX_MESSAGES": str(RESUME_MAX_MESSAGES),
        # test_slow_consumer posts 2000 messages from one page as fast as acks come;
        # the per-connection and per-account limits are tested on stacks of their own
        # (test_limits, test_connection_limits).
        "CHORUS_WS_MESSAGES_PER_SEC": "100000",
        "CHORUS_WS_MESSAGES_BURST": "100000",
        "CHORUS_ACCOUNT_POSTS_PER_SEC": "100000",
        "CHORUS_ACCOUNT_POSTS_BURST": "100000",
        # Every test (and the browser) connects from 127.0.0.1: the per-address caps are for
        # real clients, each on its own address (tested in test_connection_limits).
        "CHORUS_MAX_CONNECTIONS_PER_ADDRESS": "100000",
        "CHORUS_MAX_WEBSOCKETS_PER_ADDRESS": "100000",
        # Every test registers its people from 127.0.0.1; the per-address registration
        # limit is tested on its own stack (test_limits).
        "CHORUS_REGISTRATIONS_PER_IP": "1000000",
    }) as stack:
        yield stack


@pytest.fixture(scope="session")
def start_stack(tmp_path_factory):
    """``with start_stack({"CHORUS_...": ...}) as other:`` a second stack with its own settings,
    for tests whose limits must not touch the shared one."""
    return lambda extra_env, args=(): running_stack(tmp_path_factory.mktemp("stack"), extra_env, args)


# chorus up's readiness keys -> Stack.ports names
_STACK_PORTS = {"http": "http", "auth": "auth", "membership": "membership", "broker_router": "broker-router",
                "broker_pub": "broker-pub", "broker_grpc": "broker-grpc"}


@contextlib.contextmanager
def running_stack(root: Path, extra_env: dict[str, str], args=()) -> Iterator[Stack]:
    """`chorus up` with data under ``root``, ``extra_env`` (CHORUS_* settings) on top of a
    clean environment and ``args`` after the subcommand; every port 0 but the ROUTER's
    (see free_port), learned from its readiness line; stopped with SIGINT afterwards."""
    log_path = root / "stack.log"
    command = [sys.executable, "-m", "chorus", "up", "--data-dir", str(root / "data"),
               "--http-port", "0", "--auth-port", "0", "--membership-port", "0",
               "--broker-router-port", str(free_port()), "--broker-pub-port", "0", "--broker-grpc-port", "0",
               *args]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log, env=clean_env(extra_env))
    ready = wait_for_readiness(process, STACK_START_TIMEOUT_SECS)
    if ready is None:
        process.kill()
        process.wait()
        pytest.fail(f"chorus up did not start:\n{log_path.read_text(errors='replace')}")
    ports = {name: int(str(ready[key]).rpartition(":")[2]) for key, name in _STACK_PORTS.items()}
    stack = Stack(ready["http"], ready["http"].replace("http://", "ws://") + "/ws", ports, root / "data",
                  log_path, process)
    try:
        yield stack
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            pytest.fail(f"chorus up did not stop on SIGINT:\n{stack.log()}")


def wait_for_readiness(process: subprocess.Popen, timeout_secs: float) -> dict | None:
    """The readiness object ``process`` writes on stdout (chorus.common.readiness), or None
    when it exits or stays silent. The rest of stdout is left in the pipe."""
    deadline = time.monotonic() + timeout_secs
    found: list[dict] = []

    def read() -> None:
        for line in process.stdout:
            if (ready := readiness.parse_line(line)) is not None:
                found.append(ready)
                return
    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    while reader.is_alive() and time.monotonic() < deadline:
        reader.join(0.1)
    return found[0] if found else None


@pytest.fixture
async def api(stack):
    """The HTTP API of the shared stack, through a real client."""
    async with aiohttp.ClientSession() as http:
        yield Api(http, stack.base_url)


@pytest.fixture
def people(api, stack):
    """``await people("alice", "bob")``: newly registered, logged-in people."""
    async def make(*names):
        return [await Person.register(api, stack.ws_url, name) for name in names]
    return make


@pytest.fixture
def services(tmp_path):
    """The four services started one by one (as compose runs them) on port 0, each killable
    alone; yields ({name: Service}, webgate base URL) and checks each stops cleanly. Their keys
    (`chorus keys`) are in tmp_path/keys."""
    env = service_env(secrets.token_urlsafe(32))
    data = ["--data-dir", str(tmp_path / "data")]
    keys = ensure_keys(tmp_path / "keys")  # the internal traffic's keys, as `chorus keys` makes them
    router = f"tcp://127.0.0.1:{free_port()}"  # membership is told it before the broker starts
    started: dict[str, Service] = {}
    try:
        started["auth"] = Service("auth", ["--listen", "127.0.0.1:0", *data, "--keys-dir", str(keys / "auth")],
                                  env, tmp_path).start()
        membership = started["membership"] = Service("membership", [
            "--listen", "127.0.0.1:0", *data, "--broker-router", router,
            "--auth", started["auth"].address("grpc"), "--keys-dir", str(keys / "membership")],
            env, tmp_path).start()
        broker = started["broker"] = Service("broker", [
            "--router", router, "--pub", "tcp://127.0.0.1:0", *data, "--grpc-listen", "127.0.0.1:0",
            "--membership", membership.address("grpc"), "--keys-dir", str(keys / "broker")],
            env, tmp_path).start()
        webgate = started["webgate"] = Service("webgate", [
            "--listen", "127.0.0.1:0", "--auth", started["auth"].address("grpc"),
            "--membership", membership.address("grpc"), "--broker-router", router,
            "--broker-pub", broker.address("pub"), "--keys-dir", str(keys / "gateway")], env, tmp_path).start()
    except BaseException:
        for service in reversed(list(started.values())):
            service.stop()
        raise
    yield started, webgate.address("http")
    for service in reversed(list(started.values())):
        assert service.stop() == 0, f"{service.name} did not stop cleanly"


# databases for the storage tests ---------------------------------------------

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
POSTGRES_CONNECT_TIMEOUT_SECS = 3


def _libpq_url(url: str) -> str:
    """``url`` as plain libpq understands it (no SQLAlchemy ``+driver`` suffix)."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def _with_search_path(url: str, schema: str) -> str:
    # libpq's "options" travels through SQLAlchemy's URL query into psycopg.connect,
    # the same as connect_args={"options": ...}, while keeping create_db_engine in the path.
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}options={quote(f'-csearch_path={schema}')}"


@pytest.fixture(scope="session")
def postgres_url() -> str:
    url = os.environ.get("CHORUS_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)
    try:
        with psycopg.connect(_libpq_url(url), connect_timeout=POSTGRES_CONNECT_TIMEOUT_SECS):
            pass
    except psycopg.Error as exc:
        shown = make_url(url).render_as_string(hide_password=True)
        reason = f"PostgreSQL unreachable at {shown} (set CHORUS_TEST_POSTGRES_URL): {exc}"
        if os.environ.get("CI") == "true":
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    return url


@pytest.fixture
def postgres_schema(postgres_url: str):
    """A fresh, empty schema name; dropped with everything in it after the test."""
    schema = f"chorus_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_libpq_url(postgres_url), autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
    yield schema
    with psycopg.connect(_libpq_url(postgres_url), autocommit=True) as admin:
        admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
def postgres_engine(postgres_url: str, postgres_schema: str):
    engine = create_db_engine(_with_search_path(postgres_url, postgres_schema))
    yield engine
    engine.dispose()  # before the schema drop, which would wait on open connections' locks


@pytest.fixture
def sqlite_engine(tmp_path):
    engine = create_db_engine(sqlite_url(tmp_path, "test"))
    yield engine
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request) -> Engine:
    return request.getfixturevalue(f"{request.param}_engine")
