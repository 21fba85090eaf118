"""Membership refuses account ids that auth does not know: real gRPC servers on free ports (the real
auth service on SQLite, and a fake with auth's interface where made-up ids are handy)."""

from __future__ import annotations

import socket
from contextlib import contextmanager

import grpc
import pytest
from argon2 import PasswordHasher

from chorus.auth.passwords import Passwords
from chorus.auth.server import create_server as create_auth_server
from chorus.auth.servicer import AuthServicer
from chorus.auth.storage import AuthStore
from chorus.auth.storage import migrate as migrate_auth
from chorus.auth.tokens import DeviceTokens, TokenSigner
from chorus.common.db import create_db_engine, sqlite_url
from chorus.membership.accounts import AuthAccounts
from chorus.membership.config import Settings
from chorus.membership.server import create_server
from chorus.membership.storage import MembershipStore, migrate
from chorus.wire.pb import auth_pb2, auth_pb2_grpc
from chorus.wire.pb import membership_pb2 as pb
from chorus.wire.pb import membership_pb2_grpc as pb_grpc

TIMEOUT_SECS = 5
KEY = b"k" * 32


@contextmanager
def membership_asking(tmp_path, auth_address: str, *, auth_timeout_secs: float = TIMEOUT_SECS):
    """The membership gRPC server on a free port, checking accounts with auth at ``auth_address``."""
    url = sqlite_url(tmp_path, "membership")
    engine = create_db_engine(url)
    migrate(engine)
    with grpc.insecure_channel(auth_address) as auth_channel:
        server, port = create_server("127.0.0.1:0", MembershipStore(engine), Settings(database_url=url, max_workers=4),
                                     accounts=AuthAccounts(auth_channel, timeout_secs=auth_timeout_secs))
        server.start()
        try:
            with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
                yield pb_grpc.MembershipStub(channel)
        finally:
            server.stop(None)
            engine.dispose()


@pytest.fixture
def real_auth(tmp_path):
    """The real auth service (cheap argon2) and a stub to it."""
    engine = create_db_engine(sqlite_url(tmp_path, "auth"))
    migrate_auth(engine)
    servicer = AuthServicer(AuthStore(engine), Passwords(PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)),
                            TokenSigner(KEY, ttl_secs=3600), DeviceTokens(KEY, ttl_secs=3600))
    server, port = create_auth_server("127.0.0.1:0", servicer, max_workers=4)
    server.start()
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield f"127.0.0.1:{port}", auth_pb2_grpc.AuthStub(channel)
    server.stop(None)
    engine.dispose()


def register(auth_stub, username: str) -> str:
    reply = auth_stub.Register(auth_pb2.RegisterRequest(username=username, password="correct horse battery"),
                               timeout=TIMEOUT_SECS)
    return reply.account.id


def refused(call) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    return caught.value


def test_accounts_auth_knows_create_and_join_and_made_up_ones_are_not_found(tmp_path, real_auth):
    address, auth = real_auth
    alice, bob = register(auth, "alice"), register(auth, "bob")
    with membership_asking(tmp_path, address) as stub:
        group = stub.CreateGroup(pb.CreateGroupRequest(owner_id=alice, name="General"), timeout=TIMEOUT_SECS).group
        assert stub.JoinGroup(pb.JoinGroupRequest(group_id=group.id, account_id=bob), timeout=TIMEOUT_SECS).changed

        error = refused(lambda: stub.JoinGroup(pb.JoinGroupRequest(group_id=group.id, account_id="u_madeup"),
                                               timeout=TIMEOUT_SECS))
        assert error.code() == grpc.StatusCode.NOT_FOUND and "u_madeup" in error.details()
        error = refused(lambda: stub.CreateGroup(pb.CreateGroupRequest(owner_id="u_ghost", name="Haunted"),
                                                 timeout=TIMEOUT_SECS))
        assert error.code() == grpc.StatusCode.NOT_FOUND and "u_ghost" in error.details()

        members = stub.ListGroupMembers(pb.ListGroupMembersRequest(group_id=group.id), timeout=TIMEOUT_SECS)
        assert list(members.account_ids) == [alice, bob], "the made-up id never got in"
        assert not stub.ListGroups(pb.ListGroupsRequest(query="Haunted"), timeout=TIMEOUT_SECS).groups


def test_a_backend_cannot_fill_a_group_with_made_up_ids(tmp_path, real_auth):
    address, auth = real_auth
    with membership_asking(tmp_path, address) as stub:
        group = stub.CreateGroup(pb.CreateGroupRequest(owner_id=register(auth, "owner"), name="Full?"),
                                 timeout=TIMEOUT_SECS).group
        for n in range(20):
            error = refused(lambda: stub.JoinGroup(pb.JoinGroupRequest(group_id=group.id, account_id=f"u_fake{n}"),
                                                   timeout=TIMEOUT_SECS))
            assert error.code() == grpc.StatusCode.NOT_FOUND
        assert stub.IsMember(pb.IsMemberRequest(group_id=group.id, account_id="u_fake0")).member is False
        info = stub.JoinGroup(pb.JoinGroupRequest(group_id=group.id, account_id=register(auth, "real")),
                              timeout=TIMEOUT_SECS).group
        assert info.member_count == 2


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_with_auth_unreachable_joins_and_creates_are_unavailable_not_accepted(tmp_path, fake_auth):
    with membership_asking(tmp_path, fake_auth[1]) as stub:
        group = stub.CreateGroup(pb.CreateGroupRequest(owner_id="u_owner", name="General"), timeout=TIMEOUT_SECS).group
    with membership_asking(tmp_path, f"127.0.0.1:{_closed_port()}", auth_timeout_secs=1) as stub:
        for call in (lambda: stub.JoinGroup(pb.JoinGroupRequest(group_id=group.id, account_id="u_ann"),
                                            timeout=TIMEOUT_SECS),
                     lambda: stub.CreateGroup(pb.CreateGroupRequest(owner_id="u_ann", name="Other"),
                                              timeout=TIMEOUT_SECS)):
            error = refused(call)
            assert error.code() == grpc.StatusCode.UNAVAILABLE and "auth" in error.details()
        assert not stub.IsMember(pb.IsMemberRequest(group_id=group.id, account_id="u_ann")).member
        assert stub.ListUserGroups(pb.ListUserGroupsRequest(account_id="u_ann")).groups == []


def test_a_known_account_is_asked_about_once_and_an_unknown_one_every_time(tmp_path, fake_auth):
    fake, address = fake_auth
    fake.missing.add("u_late")
    with membership_asking(tmp_path, address) as stub:
        group = stub.CreateGroup(pb.CreateGroupRequest(owner_id="u_owner", name="General"), timeout=TIMEOUT_SECS).group
        for _ in range(3):
            stub.JoinGroup(pb.JoinGroupRequest(group_id=group.id, account_id="u_ann"), timeout=TIMEOUT_SECS)
        assert fake.asked.count("u_ann") == 1, "accounts are never deleted: a yes is remembered"
        assert refused(lambda: stub.JoinGroup(pb.JoinGroupRequest(group_id=group.id, account_id="u_late"),
                                              timeout=TIMEOUT_SECS)).code() == grpc.StatusCode.NOT_FOUND
        fake.missing.discard("u_late")  # registered meanwhile: a no was not remembered
        assert stub.JoinGroup(pb.JoinGroupRequest(group_id=group.id, account_id="u_late"), timeout=TIMEOUT_SECS).changed
