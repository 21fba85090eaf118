"""Failed logins per account, in the auth service: a real server, cheap argon2."""

from __future__ import annotations

import grpc
import pytest
from argon2 import PasswordHasher

from chorus.auth.passwords import Passwords
from chorus.auth.server import create_server
from chorus.auth.servicer import AuthServicer
from chorus.auth.storage import AuthStore, migrate
from chorus.auth.tokens import TokenSigner
from chorus.common.db import create_db_engine, sqlite_url
from chorus.common.ratelimit import Rate
from chorus.wire.pb import auth_pb2 as pb
from chorus.wire.pb import auth_pb2_grpc as pb_grpc

FAILURES = 3
WINDOW_SECS = 600
PASSWORD = "correct horse battery"


@pytest.fixture
def auth(tmp_path):
    engine = create_db_engine(sqlite_url(tmp_path, "auth"))
    migrate(engine)
    servicer = AuthServicer(AuthStore(engine),
                            Passwords(PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)),
                            TokenSigner(b"k" * 32, ttl_secs=3600),
                            login_failures=Rate.per_window(FAILURES, WINDOW_SECS))
    server, port = create_server("127.0.0.1:0", servicer, max_workers=4)
    server.start()
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = pb_grpc.AuthStub(channel)
        stub.Register(pb.RegisterRequest(username="alice", password=PASSWORD), timeout=5)
        yield stub
    server.stop(None)
    engine.dispose()


def login(stub, username: str, password: str):
    """(status code, retry-after metadata or None)."""
    try:
        stub.Login(pb.LoginRequest(username=username, password=password), timeout=5)
    except grpc.RpcError as error:
        retry_after = dict(error.trailing_metadata() or ()).get("retry-after")
        return error.code(), retry_after
    return grpc.StatusCode.OK, None


def test_past_the_limit_even_the_right_password_is_refused_with_retry_after(auth):
    for _ in range(FAILURES):
        assert login(auth, "alice", "wrong password")[0] == grpc.StatusCode.UNAUTHENTICATED
    code, retry_after = login(auth, "ALICE", PASSWORD)  # the same account, whatever the case
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert 0 < float(retry_after) <= WINDOW_SECS / FAILURES


def test_unknown_usernames_are_limited_alike(auth):
    answers = [login(auth, "nobody", "wrong password")[0] for _ in range(FAILURES + 1)]
    assert answers == [grpc.StatusCode.UNAUTHENTICATED] * FAILURES + [grpc.StatusCode.RESOURCE_EXHAUSTED]


def test_successes_do_not_count_and_other_accounts_are_untouched(auth):
    auth.Register(pb.RegisterRequest(username="bob", password=PASSWORD), timeout=5)
    for _ in range(FAILURES * 2):
        assert login(auth, "alice", PASSWORD)[0] == grpc.StatusCode.OK
    for _ in range(FAILURES):
        login(auth, "alice", "wrong password")
    assert login(auth, "bob", PASSWORD)[0] == grpc.StatusCode.OK
