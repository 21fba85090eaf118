"""The auth service end to end: a real gRPC server on a free port, a real SQLite file, real
argon2id (cheap parameters) and real tokens, called through the generated stub (and once
through reflection alone)."""

from __future__ import annotations

import time
from contextlib import contextmanager

import grpc
import pytest
from argon2 import PasswordHasher

from chorus.auth.errors import (AuthError, BadCredentials, InvalidInput, InvalidToken, StorageUnavailable,
                                UsernameTaken)
from chorus.auth.passwords import Passwords
from chorus.auth.server import SERVICE_NAME, create_server
from chorus.auth.servicer import INTERNAL_ERROR_DETAILS, AuthServicer, status_for
from chorus.auth.storage import AuthStore, migrate
from chorus.auth.tokens import DeviceTokens, TokenSigner
from chorus.common.db import create_db_engine, sqlite_url
from chorus.wire.pb import auth_pb2 as pb
from chorus.wire.pb import auth_pb2_grpc as pb_grpc
from generic_grpc import assert_serving, method_without_stubs

CHEAP_ARGON2 = {"time_cost": 1, "memory_cost": 8, "parallelism": 1}
KEY = b"test-signing-key-" + b"x" * 32
TTL_SECS = 3600
TIMEOUT_SECS = 5
PASSWORD = "correct horse battery"
WRONG_CREDENTIALS = "wrong username or password"


class Clock:
    """The token signer's clock, moved by hand to make tokens expire."""

    def __init__(self) -> None:
        self.now = float(int(time.time()))

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def serve(store: AuthStore, clock: Clock):
    servicer = AuthServicer(store, Passwords(PasswordHasher(**CHEAP_ARGON2)),
                            TokenSigner(KEY, ttl_secs=TTL_SECS, clock=clock),
                            DeviceTokens(KEY, ttl_secs=TTL_SECS, clock=clock))
    server, port = create_server("127.0.0.1:0", servicer, max_workers=4)
    server.start()
    return server, port


@pytest.fixture
def channel(accounts, clock):
    server, port = serve(accounts, clock)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield channel
    finally:
        server.stop(None)


@pytest.fixture
def stub(channel) -> pb_grpc.AuthStub:
    return pb_grpc.AuthStub(channel)


@contextmanager
def refused_with(code: grpc.StatusCode, details: str):
    """The call inside must fail with ``code`` and exactly the message ``details``."""
    with pytest.raises(grpc.RpcError) as caught:
        yield
    assert (caught.value.code(), caught.value.details()) == (code, details)


def register(stub, username: str, password: str = PASSWORD, display_name: str = "") -> pb.Account:
    request = pb.RegisterRequest(username=username, password=password, display_name=display_name)
    return stub.Register(request, timeout=TIMEOUT_SECS).account


def login(stub, username: str, password: str = PASSWORD) -> pb.LoginResponse:
    return stub.Login(pb.LoginRequest(username=username, password=password), timeout=TIMEOUT_SECS)


def authenticate(stub, token: str) -> pb.AuthenticateResponse:
    return stub.Authenticate(pb.AuthenticateRequest(token=token), timeout=TIMEOUT_SECS)


def logout(stub, token: str) -> None:
    stub.Logout(pb.LogoutRequest(token=token), timeout=TIMEOUT_SECS)


def test_register_login_authenticate_logout(stub, clock):
    ann = register(stub, "Ann", display_name="  Ann Smith  ")
    assert (ann.username, ann.display_name) == ("Ann", "Ann Smith")
    assert ann.id.startswith("u_")

    session = login(stub, "Ann")
    assert session.account == ann
    assert session.token
    assert session.expires_at_ms == (clock.now + TTL_SECS) * 1000

    who = authenticate(stub, session.token)
    assert (who.account, who.expires_at_ms) == (ann, session.expires_at_ms)

    logout(stub, session.token)
    with refused_with(grpc.StatusCode.UNAUTHENTICATED, "this token was logged out; log in again"):
        authenticate(stub, session.token)


def test_the_display_name_defaults_to_the_username(stub):
    assert register(stub, "Bob").display_name == "Bob"
    assert register(stub, "Cat", display_name="   ").display_name == "Cat"


def test_login_ignores_the_case_of_the_username(stub):
    ann = register(stub, "Ann")
    for typed in ["ann", "ANN", "aNn"]:
        assert login(stub, typed).account == ann


def test_logging_out_one_session_keeps_the_others(stub):
    register(stub, "ann")
    phone, laptop = login(stub, "ann"), login(stub, "ann")
    assert phone.token != laptop.token
    logout(stub, phone.token)
    assert authenticate(stub, laptop.token).account.username == "ann"


def test_a_username_taken_in_another_case_already_exists(stub):
    register(stub, "Ann")
    with refused_with(grpc.StatusCode.ALREADY_EXISTS, "the username 'ANN' is taken"):
        register(stub, "ANN", password="another password")
    assert login(stub, "ann").account.username == "Ann"  # the first account is untouched


@pytest.mark.parametrize(
    ("username", "password", "display_name", "details"),
    [
        ("", PASSWORD, "", "username must be 3-32 characters: letters, digits, '_', '.', '-'"),
        ("an", PASSWORD, "", "username must be 3-32 characters: letters, digits, '_', '.', '-'"),
        ("ann smith", PASSWORD, "", "username must be 3-32 characters: letters, digits, '_', '.', '-'"),
        ("x" * 33, PASSWORD, "", "username must be 3-32 characters: letters, digits, '_', '.', '-'"),
        ("ann", "seven77", "", "password must be at least 8 characters"),
        ("ann", "x" * 129, "", "password must be at most 128 characters"),
        ("ann", PASSWORD, "x" * 65, "display name must be at most 64 characters"),
        ("ann", PASSWORD, "Ann\nSmith", "display name must not contain control characters"),
    ],
)
def test_bad_registrations_are_invalid_argument_with_the_rule(stub, username, password, display_name, details):
    with refused_with(grpc.StatusCode.INVALID_ARGUMENT, details):
        register(stub, username, password, display_name)
    with refused_with(grpc.StatusCode.UNAUTHENTICATED, WRONG_CREDENTIALS):
        login(stub, username or "ann", password)  # nothing was created


def test_wrong_password_and_unknown_user_get_the_same_answer(stub):
    register(stub, "ann")
    with refused_with(grpc.StatusCode.UNAUTHENTICATED, WRONG_CREDENTIALS):
        login(stub, "ann", "wrong horse battery")
    with refused_with(grpc.StatusCode.UNAUTHENTICATED, WRONG_CREDENTIALS):
        login(stub, "nobody", PASSWORD)
    with refused_with(grpc.StatusCode.UNAUTHENTICATED, WRONG_CREDENTIALS):
        login(stub, "", PASSWORD)


def test_an_unknown_user_cannot_log_in_with_the_servers_dummy_password(stub):
    with refused_with(grpc.StatusCode.UNAUTHENTICATED, WRONG_CREDENTIALS):
        login(stub, "nobody", "not a real password")


def test_an_expired_token_is_unauthenticated(stub, clock):
    register(stub, "ann")
    session = login(stub, "ann")
    clock.now += TTL_SECS - 1
    assert authenticate(stub, session.token).account.username == "ann"
    clock.now += 1
    with refused_with(grpc.StatusCode.UNAUTHENTICATED, "token expired; log in again"):
        authenticate(stub, session.token)
    with refused_with(grpc.StatusCode.UNAUTHENTICATED, "token expired; log in again"):
        logout(stub, session.token)


@pytest.mark.parametrize("token", ["", "garbage", "a.b.c"])
def test_a_garbage_token_is_unauthenticated(stub, token):
    with refused_with(grpc.StatusCode.UNAUTHENTICATED, "invalid token; log in again"):
        authenticate(stub, token)
    with refused_with(grpc.StatusCode.UNAUTHENTICATED, "invalid token; log in again"):
        logout(stub, token)


def test_a_token_from_a_server_with_another_key_is_unauthenticated(stub, clock):
    ann = register(stub, "ann")
    forged, _ = TokenSigner(b"z" * 32, ttl_secs=TTL_SECS, clock=clock).issue(ann.id)
    with refused_with(grpc.StatusCode.UNAUTHENTICATED, "invalid token; log in again"):
        authenticate(stub, forged)


def test_logging_out_twice_is_fine(stub):
    register(stub, "ann")
    token = login(stub, "ann").token
    logout(stub, token)
    logout(stub, token)
    with refused_with(grpc.StatusCode.UNAUTHENTICATED, "this token was logged out; log in again"):
        authenticate(stub, token)


def test_logins_survive_a_server_restart_on_the_same_database(accounts, clock):
    first, port = serve(accounts, clock)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = pb_grpc.AuthStub(channel)
            register(stub, "ann")
            kept, dropped = login(stub, "ann").token, login(stub, "ann").token
            logout(stub, dropped)
    finally:
        first.stop(None)
    second, port = serve(accounts, clock)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = pb_grpc.AuthStub(channel)
            assert authenticate(stub, kept).account.username == "ann"
            with refused_with(grpc.StatusCode.UNAUTHENTICATED, "this token was logged out; log in again"):
                authenticate(stub, dropped)
    finally:
        second.stop(None)


def test_login_upgrades_a_hash_made_with_other_parameters(stub, accounts):
    old_hash = PasswordHasher(time_cost=2, memory_cost=8, parallelism=1).hash(PASSWORD)
    accounts.create_account("old", "Old Timer", old_hash)
    assert login(stub, "old").account.display_name == "Old Timer"
    new_hash = accounts.find_by_username("old").password_hash
    assert new_hash != old_hash and new_hash.startswith("$argon2id$v=19$m=8,t=1,p=1$")
    assert login(stub, "old").account.username == "old"  # the new hash still takes the password


def test_an_unreachable_database_is_unavailable(clock):
    engine = create_db_engine("postgresql://nobody@127.0.0.1:1/nothing")
    server, port = serve(AuthStore(engine), clock)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            with refused_with(grpc.StatusCode.UNAVAILABLE, "the auth database is unavailable; try again"):
                register(pb_grpc.AuthStub(channel), "ann")
    finally:
        server.stop(None)
        engine.dispose()


class BrokenLookups(AuthStore):
    """A store with a bug in one method: looking up a username."""

    def find_by_username(self, username: str):
        raise RuntimeError("bug: lookup exploded")


def test_a_bug_is_internal_logged_and_the_server_keeps_serving(tmp_path, clock, caplog):
    engine = create_db_engine(sqlite_url(tmp_path, "broken"))
    migrate(engine)
    server, port = serve(BrokenLookups(engine), clock)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = pb_grpc.AuthStub(channel)
            with refused_with(grpc.StatusCode.INTERNAL, INTERNAL_ERROR_DETAILS):
                login(stub, "ann", "secret password 1")
            assert register(stub, "ann").username == "ann"  # still serving
    finally:
        server.stop(None)
        engine.dispose()
    [logged] = [r for r in caplog.records if r.name == "chorus.auth.servicer"]
    assert logged.levelname == "ERROR" and "Login" in logged.getMessage()
    assert "bug: lookup exploded" in logged.exc_text
    assert "secret password 1" not in caplog.text


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (InvalidInput("x"), grpc.StatusCode.INVALID_ARGUMENT),
        (UsernameTaken("ann"), grpc.StatusCode.ALREADY_EXISTS),
        (BadCredentials(), grpc.StatusCode.UNAUTHENTICATED),
        (InvalidToken("x"), grpc.StatusCode.UNAUTHENTICATED),
        (StorageUnavailable("x"), grpc.StatusCode.UNAVAILABLE),
        (AuthError("unforeseen"), grpc.StatusCode.INTERNAL),
    ],
)
def test_each_error_has_its_documented_status(error, code):
    assert status_for(error) == code


def get_accounts(stub, ids) -> list[pb.Account]:
    return list(stub.GetAccounts(pb.GetAccountsRequest(ids=ids), timeout=TIMEOUT_SECS).accounts)


def test_get_accounts_returns_public_profiles_and_leaves_unknown_ids_out(stub):
    ann = register(stub, "ann", display_name="Ann Smith")
    bob = register(stub, "bob")
    assert get_accounts(stub, [bob.id, "u_nobody", ann.id]) == [bob, ann]
    assert get_accounts(stub, ["u_nobody"]) == []
    assert get_accounts(stub, []) == []


def test_get_accounts_ignores_empty_and_repeated_ids(stub):
    ann = register(stub, "ann")
    assert get_accounts(stub, ["", ann.id, "", ann.id]) == [ann]


def test_get_accounts_takes_up_to_1000_ids_and_refuses_more(stub):
    ann = register(stub, "ann")
    assert get_accounts(stub, [f"u_missing{i}" for i in range(999)] + [ann.id]) == [ann]
    with refused_with(grpc.StatusCode.INVALID_ARGUMENT, "at most 1000 ids per call, got 1001"):
        get_accounts(stub, [ann.id] * 1001)


def test_health_reports_the_service_serving(channel):
    assert_serving(channel, "chorus.auth.v1.Auth")
    assert SERVICE_NAME == "chorus.auth.v1.Auth"


def test_a_client_without_stubs_can_authenticate_through_reflection(stub, channel):
    ann = register(stub, "ann", display_name="Ann")
    token = login(stub, "ann").token
    call, request_class = method_without_stubs(channel, "chorus.auth.v1.Auth", "Authenticate")
    assert request_class is not pb.AuthenticateRequest
    reply = call(request_class(token=token), timeout=TIMEOUT_SECS)
    assert (reply.account.id, reply.account.username, reply.account.display_name) == (ann.id, "ann", "Ann")
