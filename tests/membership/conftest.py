"""Fixtures for the membership tests: stores on the shared ``engine`` (tests/conftest.py),
which runs each storage test on SQLite and on PostgreSQL, and a fake auth gRPC server that
knows the made-up account ids the tests use."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
from sqlalchemy.engine import Engine

from chorus.membership.accounts import AuthAccounts
from chorus.membership.storage import MembershipStore, migrate
from chorus.wire.pb import auth_pb2, auth_pb2_grpc


@pytest.fixture
def make_store(engine: Engine):
    """``make_store(**limits)``: a MembershipStore on the test's database, tables created."""
    migrate(engine)
    return lambda **limits: MembershipStore(engine, **limits)


@pytest.fixture
def store(make_store) -> MembershipStore:
    return make_store()


class FakeAuth(auth_pb2_grpc.AuthServicer):
    """Auth's gRPC interface, as much as membership uses (GetAccounts), for the made-up ids of
    these tests: every id that starts with "u_" exists, except those in ``missing``.
    (Against the real auth service: test_accounts.py.)"""

    def __init__(self) -> None:
        self.missing: set[str] = set()
        self.asked: list[str] = []

    def GetAccounts(self, request, context):
        self.asked.extend(request.ids)
        return auth_pb2.GetAccountsResponse(accounts=[
            auth_pb2.Account(id=account_id, username=account_id, display_name=account_id)
            for account_id in request.ids if account_id.startswith("u_") and account_id not in self.missing])


@pytest.fixture
def fake_auth():
    """(FakeAuth, "127.0.0.1:PORT"): a real gRPC server on a free port."""
    fake = FakeAuth()
    server = grpc.server(ThreadPoolExecutor(max_workers=4))
    auth_pb2_grpc.add_AuthServicer_to_server(fake, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield fake, f"127.0.0.1:{port}"
    server.stop(None)


@pytest.fixture
def accounts(fake_auth) -> AuthAccounts:
    """Membership's real auth client, asking the fake auth server."""
    with grpc.insecure_channel(fake_auth[1]) as channel:
        yield AuthAccounts(channel, timeout_secs=5)
