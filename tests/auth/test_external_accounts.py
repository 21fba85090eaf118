"""Accounts of other websites' users (ResolveExternalAccount) and the revocation list gateways
poll (ListRevocations), through a real gRPC server on a real SQLite file; the storage races on
SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time

import grpc
import pytest
from argon2 import PasswordHasher

from chorus.auth.passwords import Passwords
from chorus.auth.server import create_server
from chorus.auth.servicer import AuthServicer
from chorus.auth.storage import AuthStore
from chorus.auth.tokens import DeviceTokens, TokenSigner
from chorus.auth.validation import check_username, external_username
from chorus.wire.pb import auth_pb2 as pb
from chorus.wire.pb import auth_pb2_grpc as pb_grpc

PASSWORD = "correct horse battery"
WRONG_CREDENTIALS = "wrong username or password"


@pytest.fixture
def stub(accounts):
    servicer = AuthServicer(accounts, Passwords(PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)),
                            TokenSigner(b"k" * 32, ttl_secs=3600), DeviceTokens(b"k" * 32, ttl_secs=3600))
    server, port = create_server("127.0.0.1:0", servicer, max_workers=4)
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield pb_grpc.AuthStub(channel)
    finally:
        server.stop(None)


def register(stub, username: str) -> None:
    stub.Register(pb.RegisterRequest(username=username, password=PASSWORD), timeout=5)


def login(stub, username: str) -> pb.LoginResponse:
    return stub.Login(pb.LoginRequest(username=username, password=PASSWORD), timeout=5)


def logout(stub, token: str) -> None:
    stub.Logout(pb.LogoutRequest(token=token), timeout=5)


def resolve(stub, issuer="school", subject="42", display_name="Ann Example") -> pb.ResolveExternalAccountResponse:
    return stub.ResolveExternalAccount(pb.ResolveExternalAccountRequest(
        issuer=issuer, subject=subject, display_name=display_name), timeout=5)


def test_first_sight_creates_the_account_and_later_calls_update_its_name(stub):
    first = resolve(stub, display_name="Ann Example")
    assert first.created and first.account.display_name == "Ann Example"
    check_username(first.account.username)
    again = resolve(stub, display_name="Ann Married-Name")
    assert not again.created and again.account.id == first.account.id
    assert again.account.display_name == "Ann Married-Name"
    kept = resolve(stub, display_name="")  # no name: the one it has stays
    assert kept.account.display_name == "Ann Married-Name"
    [profile] = stub.GetAccounts(pb.GetAccountsRequest(ids=[first.account.id]), timeout=5).accounts
    assert profile.display_name == "Ann Married-Name"


def test_the_same_user_id_on_two_sites_is_two_people(stub):
    school, shop = resolve(stub, "school", "7"), resolve(stub, "shop", "7")
    assert school.account.id != shop.account.id
    assert school.account.username != shop.account.username


def test_a_site_user_cannot_log_in_with_a_password(stub):
    account = resolve(stub, subject="no-password").account
    for password in ("", PASSWORD, "not a real password"):
        with pytest.raises(grpc.RpcError) as refused:
            stub.Login(pb.LoginRequest(username=account.username, password=password), timeout=5)
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert refused.value.details() == WRONG_CREDENTIALS


def test_a_squatted_username_gets_another(stub):
    derived = external_username("school", "squat")
    register(stub, derived)  # someone registered the name the site user would get
    account = resolve(stub, subject="squat").account
    assert account.username != derived and check_username(account.username)


def test_names_without_a_name_and_odd_subjects(stub):
    assert resolve(stub, subject="bob@example.com", display_name="").account.display_name == "bob@example.com"
    odd = resolve(stub, subject="\u202e" * 3 + "x", display_name="").account  # the subject is no valid name
    assert odd.display_name == odd.username


@pytest.mark.parametrize("issuer, subject, display_name, words", [
    ("", "1", "Ann", "issuer must be 1-256 characters"),
    ("school", "", "Ann", "subject must be 1-256 characters"),
    ("school", "x" * 257, "Ann", "subject must be 1-256 characters"),
    ("school", "a\x00b", "Ann", "subject"),
    ("school", "1", "Аnn with a Cyrillic A", "mixes scripts"),
])
def test_bad_pairs_and_names_are_refused_and_create_nothing(stub, accounts, issuer, subject, display_name, words):
    with pytest.raises(grpc.RpcError) as refused:
        resolve(stub, issuer, subject, display_name)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT and words in refused.value.details()
    if issuer and subject and len(subject) <= 256:
        assert accounts.find_external(issuer, subject) is None


def test_revocations_are_listed_from_a_time_on(stub):
    register(stub, "revoker")
    before = stub.ListRevocations(pb.ListRevocationsRequest(since_ms=0), timeout=5)
    token = login(stub, "revoker").token
    token_id = stub.Authenticate(pb.AuthenticateRequest(token=token), timeout=5).token_id
    assert token_id and token_id not in before.token_ids
    logout(stub, token)
    listed = stub.ListRevocations(pb.ListRevocationsRequest(since_ms=before.as_of_ms), timeout=5)
    assert token_id in listed.token_ids and listed.as_of_ms >= before.as_of_ms
    later = stub.ListRevocations(pb.ListRevocationsRequest(since_ms=listed.as_of_ms + 1000), timeout=5)
    assert token_id not in later.token_ids


def test_racing_first_sights_of_one_pair_make_one_account(store: AuthStore):
    results = []

    def first_sight():
        made = store.create_external("race", "1", external_username("race", "1"), "Racer")
        results.append(made)

    threads = [threading.Thread(target=first_sight) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [r for r in results if r is not None]
    assert len(winners) == 1
    assert store.find_external("race", "1").id == winners[0].id


def test_revoked_since_is_ordered_and_bounded(store: AuthStore):
    now_ms = int(time.time() * 1000)
    for n in range(3):
        store.revoke(f"t{n}", int(time.time()) + 60, now_ms=now_ms + n)
    assert store.revoked_since(now_ms + 1, limit=10) == ["t1", "t2"]
    assert store.revoked_since(now_ms, limit=2) == ["t0", "t1"]
