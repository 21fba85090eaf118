"""The membership service end to end: a real gRPC server on a free port, a real SQLite file,
called through the generated stub (and once through reflection alone)."""

from __future__ import annotations

from contextlib import contextmanager

import grpc
import pytest

from chorus.common.db import create_db_engine, sqlite_url
from chorus.membership.config import Settings
from chorus.membership.server import SERVICE_NAME, create_server
from chorus.membership.servicer import INTERNAL_ERROR_DETAILS
from chorus.membership.storage import MembershipStore, migrate
from chorus.wire.pb import membership_pb2 as pb
from chorus.wire.pb import membership_pb2_grpc as pb_grpc
from generic_grpc import assert_serving, method_without_stubs

MAX_MEMBERS = 3
TIMEOUT_SECS = 5


@pytest.fixture
def channel(tmp_path, accounts):
    url = sqlite_url(tmp_path, "membership")
    engine = create_db_engine(url)
    migrate(engine)
    store = MembershipStore(engine, max_members_per_group=MAX_MEMBERS)
    server, port = create_server("127.0.0.1:0", store, Settings(database_url=url, max_workers=4),
                                 accounts=accounts)
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield channel
    finally:
        server.stop(None)
        engine.dispose()


@pytest.fixture
def stub(channel) -> pb_grpc.MembershipStub:
    return pb_grpc.MembershipStub(channel)


@contextmanager
def refused_with(code: grpc.StatusCode, details: str = ""):
    """The call inside must fail with ``code`` and a message containing ``details``."""
    with pytest.raises(grpc.RpcError) as caught:
        yield
    assert caught.value.code() == code, caught.value.details()
    assert details in caught.value.details()


def create(stub, name: str, owner: str = "u_owner") -> pb.Group:
    return stub.CreateGroup(pb.CreateGroupRequest(owner_id=owner, name=name), timeout=TIMEOUT_SECS).group


def test_create_group_returns_the_group_with_its_owner_counted(stub):
    group = create(stub, " General ")
    assert (group.name, group.owner_id, group.member_count) == ("General", "u_owner", 1)
    assert group.id


def test_join_and_leave_report_whether_anything_changed(stub):
    group = create(stub, "General")
    first = stub.JoinGroup(pb.JoinGroupRequest(group_id=group.id, account_id="u_ann"))
    again = stub.JoinGroup(pb.JoinGroupRequest(group_id=group.id, account_id="u_ann"))
    assert (first.changed, first.group.member_count) == (True, 2)
    assert (again.changed, again.group.member_count) == (False, 2)
    left = stub.LeaveGroup(pb.LeaveGroupRequest(group_id=group.id, account_id="u_ann"))
    left_again = stub.LeaveGroup(pb.LeaveGroupRequest(group_id=group.id, account_id="u_ann"))
    assert (left.changed, left.group.member_count) == (True, 1)
    assert (left_again.changed, left_again.group.member_count) == (False, 1)
    assert left.group.name == "General"


def test_list_user_groups_is_ordered_by_name(stub):
    for name in ["random", "Books", "general"]:
        create(stub, name)
    create(stub, "not mine", owner="u_other")
    groups = stub.ListUserGroups(pb.ListUserGroupsRequest(account_id="u_owner")).groups
    assert [group.name for group in groups] == ["Books", "general", "random"]
    assert stub.ListUserGroups(pb.ListUserGroupsRequest(account_id="u_nobody")).groups == []


def test_list_group_members_lists_accounts_in_join_order(stub):
    group = create(stub, "General")
    for account in ["u_ann", "u_bob"]:
        stub.JoinGroup(pb.JoinGroupRequest(group_id=group.id, account_id=account))
    members = stub.ListGroupMembers(pb.ListGroupMembersRequest(group_id=group.id)).account_ids
    assert list(members) == ["u_owner", "u_ann", "u_bob"]


def test_list_groups_is_the_directory_with_joined_flags(stub):
    general, random_ = create(stub, "general"), create(stub, "random", owner="u_other")
    stub.JoinGroup(pb.JoinGroupRequest(group_id=random_.id, account_id="u_ann"))
    entries = stub.ListGroups(pb.ListGroupsRequest(account_id="u_ann")).groups
    assert [(entry.group.id, entry.group.member_count, entry.joined) for entry in entries] == [
        (general.id, 1, False),
        (random_.id, 2, True),
    ]
    anonymous = stub.ListGroups(pb.ListGroupsRequest()).groups
    assert [entry.joined for entry in anonymous] == [False, False]


def test_list_groups_honours_the_limit(stub):
    for name in ["c", "a", "b"]:
        create(stub, name)
    assert [e.group.name for e in stub.ListGroups(pb.ListGroupsRequest(limit=2)).groups] == ["a", "b"]
    assert len(stub.ListGroups(pb.ListGroupsRequest(limit=0)).groups) == 3  # 0: default page size
    with refused_with(grpc.StatusCode.INVALID_ARGUMENT, "limit"):
        stub.ListGroups(pb.ListGroupsRequest(limit=-1))


@pytest.mark.parametrize(
    "call",
    [
        lambda stub: stub.JoinGroup(pb.JoinGroupRequest(group_id="g_missing", account_id="u_ann")),
        lambda stub: stub.LeaveGroup(pb.LeaveGroupRequest(group_id="g_missing", account_id="u_ann")),
        lambda stub: stub.ListGroupMembers(pb.ListGroupMembersRequest(group_id="g_missing")),
    ],
    ids=["JoinGroup", "LeaveGroup", "ListGroupMembers"],
)
def test_unknown_group_is_not_found(stub, call):
    with refused_with(grpc.StatusCode.NOT_FOUND, "g_missing"):
        call(stub)


@pytest.mark.parametrize(
    ("call", "details"),
    [
        (lambda stub: stub.CreateGroup(pb.CreateGroupRequest(owner_id="u_owner", name="")), "empty"),
        (lambda stub: stub.CreateGroup(pb.CreateGroupRequest(owner_id="u_owner", name="   ")), "empty"),
        (lambda stub: stub.CreateGroup(pb.CreateGroupRequest(owner_id="u_owner", name="x" * 65)), "64"),
        (lambda stub: stub.CreateGroup(pb.CreateGroupRequest(owner_id="u_owner", name="a\nb")), "control"),
        (lambda stub: stub.CreateGroup(pb.CreateGroupRequest(owner_id="", name="General")), "owner_id"),
        (lambda stub: stub.JoinGroup(pb.JoinGroupRequest(group_id="", account_id="u_ann")), "group_id"),
        (lambda stub: stub.JoinGroup(pb.JoinGroupRequest(group_id="g_x", account_id="")), "account_id"),
        (lambda stub: stub.LeaveGroup(pb.LeaveGroupRequest(group_id="g_x", account_id="")), "account_id"),
        (lambda stub: stub.ListUserGroups(pb.ListUserGroupsRequest(account_id="")), "account_id"),
        (lambda stub: stub.ListGroupMembers(pb.ListGroupMembersRequest(group_id="")), "group_id"),
    ],
)
def test_bad_input_is_invalid_argument(stub, call, details):
    with refused_with(grpc.StatusCode.INVALID_ARGUMENT, details):
        call(stub)


def test_duplicate_name_ignoring_case_already_exists(stub):
    create(stub, "General")
    with refused_with(grpc.StatusCode.ALREADY_EXISTS, "GENERAL"):
        create(stub, "GENERAL", owner="u_other")


def test_joining_a_full_group_is_a_failed_precondition(stub):
    group = create(stub, "small")
    for account in ["u_ann", "u_bob"]:
        stub.JoinGroup(pb.JoinGroupRequest(group_id=group.id, account_id=account))
    with refused_with(grpc.StatusCode.FAILED_PRECONDITION, f"group has reached {MAX_MEMBERS} members"):
        stub.JoinGroup(pb.JoinGroupRequest(group_id=group.id, account_id="u_cat"))


def test_health_reports_the_service_serving(channel):
    assert_serving(channel, "chorus.membership.v1.Membership")
    assert SERVICE_NAME == "chorus.membership.v1.Membership"


def test_a_client_without_stubs_can_call_through_reflection(stub, channel):
    group = create(stub, "General", owner="u_ann")
    list_user_groups, request_class = method_without_stubs(
        channel, "chorus.membership.v1.Membership", "ListUserGroups")
    assert request_class is not pb.ListUserGroupsRequest
    reply = list_user_groups(request_class(account_id="u_ann"), timeout=TIMEOUT_SECS)
    assert [(g.id, g.name, g.owner_id, g.member_count) for g in reply.groups] == [
        (group.id, "General", "u_ann", 1)
    ]


class BrokenDirectory(MembershipStore):
    """A store with a bug in one method: the directory."""

    def directory_page(self, account_id, limit, **_paging):
        raise RuntimeError("bug: directory exploded")


def test_a_bug_is_internal_logged_and_the_server_keeps_serving(tmp_path, caplog, accounts):
    url = sqlite_url(tmp_path, "broken")
    engine = create_db_engine(url)
    migrate(engine)
    server, port = create_server("127.0.0.1:0", BrokenDirectory(engine), Settings(database_url=url, max_workers=2),
                                 accounts=accounts)
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = pb_grpc.MembershipStub(channel)
            with refused_with(grpc.StatusCode.INTERNAL, INTERNAL_ERROR_DETAILS):
                stub.ListGroups(pb.ListGroupsRequest(), timeout=TIMEOUT_SECS)
            assert create(stub, "Still serving").name == "Still serving"
    finally:
        server.stop(None)
        engine.dispose()
    [logged] = [r for r in caplog.records if r.name == "chorus.membership.servicer"]
    assert logged.levelname == "ERROR" and "ListGroups" in logged.getMessage()
    assert "bug: directory exploded" in logged.exc_text


# pages and searches (the store's side: test_paging.py) ------------------------------------------------------------------------------

def test_list_groups_searches_and_pages_with_opaque_cursors(stub):
    for n in range(5):
        stub.CreateGroup(pb.CreateGroupRequest(owner_id=f"u_{n}", name=f"Book club {n}"))
    stub.CreateGroup(pb.CreateGroupRequest(owner_id="u_owner", name="Chess"))
    first = stub.ListGroups(pb.ListGroupsRequest(query="BOOK", limit=3))
    second = stub.ListGroups(pb.ListGroupsRequest(query="BOOK", limit=3, cursor=first.next_cursor))
    assert [e.group.name for e in first.groups] == ["Book club 0", "Book club 1", "Book club 2"]
    assert [e.group.name for e in second.groups] == ["Book club 3", "Book club 4"] and second.next_cursor == ""
    with pytest.raises(grpc.RpcError) as caught:
        stub.ListGroups(pb.ListGroupsRequest(cursor="garbage"))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_list_group_members_pages_and_is_member_checks_one(stub):
    group = stub.CreateGroup(pb.CreateGroupRequest(owner_id="u_owner", name="General")).group
    for account in ["u_ann", "u_bob"]:
        stub.JoinGroup(pb.JoinGroupRequest(group_id=group.id, account_id=account))
    first = stub.ListGroupMembers(pb.ListGroupMembersRequest(group_id=group.id, limit=2))
    rest = stub.ListGroupMembers(pb.ListGroupMembersRequest(group_id=group.id, limit=2, cursor=first.next_cursor))
    assert list(first.account_ids) + list(rest.account_ids) == ["u_owner", "u_ann", "u_bob"]
    assert rest.next_cursor == ""
    assert stub.IsMember(pb.IsMemberRequest(group_id=group.id, account_id="u_bob")).member
    assert not stub.IsMember(pb.IsMemberRequest(group_id=group.id, account_id="u_cat")).member
    with pytest.raises(grpc.RpcError) as caught:
        stub.IsMember(pb.IsMemberRequest(group_id="g_missing", account_id="u_bob"))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
