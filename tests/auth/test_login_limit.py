"""Failed logins per account for unknown devices and per known device, in the auth service:
a real server, cheap argon2. (The same through the gateway and its cookie: tests/test_limits.py.)"""

from __future__ import annotations

import grpc
import pytest
from argon2 import PasswordHasher

from chorus.auth.passwords import Passwords
from chorus.auth.server import create_server
from chorus.auth.servicer import AuthServicer
from chorus.auth.storage import AuthStore, migrate
from chorus.auth.tokens import DeviceTokens, TokenSigner
from chorus.common.db import create_db_engine, sqlite_url
from chorus.common.ratelimit import Rate
from chorus.wire.pb import auth_pb2 as pb
from chorus.wire.pb import auth_pb2_grpc as pb_grpc

FAILURES = 3
DEVICE_FAILURES = 4  # differs from FAILURES, so a test can tell which bucket refused
WINDOW_SECS = 600
PASSWORD = "correct horse battery"


@pytest.fixture
def auth(tmp_path):
    engine = create_db_engine(sqlite_url(tmp_path, "auth"))
    migrate(engine)
    servicer = AuthServicer(AuthStore(engine),
                            Passwords(PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)),
                            TokenSigner(b"k" * 32, ttl_secs=3600), DeviceTokens(b"k" * 32, ttl_secs=3600),
                            login_failures=Rate.per_window(FAILURES, WINDOW_SECS),
                            device_login_failures=Rate.per_window(DEVICE_FAILURES, WINDOW_SECS))
    server, port = create_server("127.0.0.1:0", servicer, max_workers=4)
    server.start()
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = pb_grpc.AuthStub(channel)
        stub.Register(pb.RegisterRequest(username="alice", password=PASSWORD), timeout=5)
        yield stub
    server.stop(None)
    engine.dispose()


def login(stub, username: str, password: str, device_token: str = ""):
    """(status code, retry-after metadata or None)."""
    return login_reply(stub, username, password, device_token)[:2]


def login_reply(stub, username: str, password: str, device_token: str = ""):
    """(status code, retry-after metadata or None, LoginResponse or None)."""
    try:
        reply = stub.Login(pb.LoginRequest(username=username, password=password, device_token=device_token),
                           timeout=5)
    except grpc.RpcError as error:
        retry_after = dict(error.trailing_metadata() or ()).get("retry-after")
        return error.code(), retry_after, None
    return grpc.StatusCode.OK, None, reply


def known_device(stub, username: str = "alice") -> str:
    """The device token a successful login hands out: the owner's device from now on."""
    code, _, reply = login_reply(stub, username, PASSWORD)
    assert code == grpc.StatusCode.OK and reply.device_token
    return reply.device_token


def strangers_guess(stub, username: str = "alice", times: int = FAILURES) -> None:
    for _ in range(times):
        assert login(stub, username, "wrong password")[0] == grpc.StatusCode.UNAUTHENTICATED


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


# known devices (OWASP "device cookie") -------------------------------------------------

def test_a_strangers_wrong_passwords_do_not_stop_the_owner_on_a_known_device(auth):
    device = known_device(auth)
    strangers_guess(auth)
    assert login(auth, "alice", "wrong password")[0] == grpc.StatusCode.RESOURCE_EXHAUSTED, "stranger stopped"
    code, _, reply = login_reply(auth, "ALICE", PASSWORD, device)  # the same username, whatever the case
    assert code == grpc.StatusCode.OK and reply.account.username == "alice"
    assert reply.device_token and reply.device_expires_at_ms > 0


def test_a_known_device_has_its_own_limit_and_the_account_is_not_spent_by_it(auth):
    device = known_device(auth)
    for _ in range(DEVICE_FAILURES):
        assert login(auth, "alice", "wrong password", device)[0] == grpc.StatusCode.UNAUTHENTICATED
    code, retry_after = login(auth, "alice", PASSWORD, device)
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and 0 < float(retry_after) <= WINDOW_SECS / DEVICE_FAILURES
    assert login(auth, "alice", PASSWORD)[0] == grpc.StatusCode.OK, "untrusted clients have their own bucket"
    assert login(auth, "alice", PASSWORD, known_device(auth))[0] == grpc.StatusCode.OK, "another device too"


def test_a_device_token_of_another_username_is_untrusted(auth):
    auth.Register(pb.RegisterRequest(username="mallory", password=PASSWORD), timeout=5)
    mallorys_device = known_device(auth, "mallory")
    for _ in range(FAILURES):
        assert login(auth, "alice", "wrong password", mallorys_device)[0] == grpc.StatusCode.UNAUTHENTICATED
    assert login(auth, "alice", "wrong password")[0] == grpc.StatusCode.RESOURCE_EXHAUSTED, \
        "those guesses spent the account's bucket for untrusted clients"
    assert login(auth, "alice", PASSWORD, mallorys_device)[0] == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_a_tampered_device_token_is_untrusted(auth):
    device = known_device(auth)
    header, payload, signature = device.split(".")
    tampered = f"{header}.{payload}.{signature[:-2]}{'A' if signature[-2] != 'A' else 'B'}{signature[-1]}"
    strangers_guess(auth)
    assert login(auth, "alice", PASSWORD, tampered)[0] == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert login(auth, "alice", PASSWORD, device)[0] == grpc.StatusCode.OK


def test_a_login_from_a_known_device_renews_it_and_keeps_its_limit(auth):
    device = known_device(auth)
    login(auth, "alice", "wrong password", device)
    code, _, reply = login_reply(auth, "alice", PASSWORD, device)
    assert code == grpc.StatusCode.OK
    for _ in range(DEVICE_FAILURES - 1):  # one failure already counted against this device
        assert login(auth, "alice", "wrong password", reply.device_token)[0] == grpc.StatusCode.UNAUTHENTICATED
    assert login(auth, "alice", PASSWORD, reply.device_token)[0] == grpc.StatusCode.RESOURCE_EXHAUSTED, \
        "the renewed token is the same device"


def test_a_device_token_is_not_a_session_token(auth):
    device = known_device(auth)
    with pytest.raises(grpc.RpcError) as caught:
        auth.Authenticate(pb.AuthenticateRequest(token=device), timeout=5)
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


@pytest.fixture
def two_replicas(engine):
    """Two auth servers on one database, as replicas behind a balancer are (SQLite and PostgreSQL)."""
    migrate(engine)
    servers, stubs, channels = [], [], []
    for _ in range(2):
        servicer = AuthServicer(AuthStore(engine),
                                Passwords(PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)),
                                TokenSigner(b"k" * 32, ttl_secs=3600), DeviceTokens(b"k" * 32, ttl_secs=3600),
                                login_failures=Rate.per_window(FAILURES, WINDOW_SECS),
                                device_login_failures=Rate.per_window(DEVICE_FAILURES, WINDOW_SECS))
        server, port = create_server("127.0.0.1:0", servicer, max_workers=4)
        server.start()
        servers.append(server)
        channels.append(grpc.insecure_channel(f"127.0.0.1:{port}"))
        stubs.append(pb_grpc.AuthStub(channels[-1]))
    stubs[0].Register(pb.RegisterRequest(username="alice", password=PASSWORD), timeout=5)
    yield stubs
    for channel in channels:
        channel.close()
    for server in servers:
        server.stop(None)


def test_failed_logins_count_once_across_replicas(two_replicas):
    one, two = two_replicas
    for n in range(FAILURES):  # spread over both, as a balancer would
        assert login([one, two][n % 2], "alice", "wrong")[0] == grpc.StatusCode.UNAUTHENTICATED
    code, retry_after = login(two, "alice", PASSWORD)
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and float(retry_after) > 0, \
        "the other replica knows the account's bucket is empty"
    assert login(one, "alice", PASSWORD)[0] == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_a_success_on_one_replica_gives_its_attempt_back_on_all(two_replicas):
    one, two = two_replicas
    for _ in range(FAILURES - 1):
        login(one, "alice", "wrong")
    for _ in range(3):  # each success takes a token and gives it back: never locked out by them
        assert login(two, "alice", PASSWORD)[0] == grpc.StatusCode.OK
    assert login(one, "alice", "wrong")[0] == grpc.StatusCode.UNAUTHENTICATED
    assert login(two, "alice", PASSWORD)[0] == grpc.StatusCode.RESOURCE_EXHAUSTED
