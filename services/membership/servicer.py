"""The Membership gRPC service: protobuf in, store call, protobuf out.

Validation and every rule live in the store; this module only converts, and
maps the domain errors (see errors.py) to a gRPC status in one table
(chorus.common.grpcerrors: anything else is logged and answered INTERNAL).

Every committed change of who is in a group (CreateGroup's owner, JoinGroup
and LeaveGroup with ``changed``) is handed to the injected notifier with the
number the store gave it in its transaction, which tells the broker so live
sessions follow it, whoever called us. Order of hand-over does not matter:
brokers and gateways apply a pair's change only if its number is higher than
the last they applied (storage.py), so racing calls on this process's threads,
or on several membership processes sharing the database, end in the
committed state everywhere.

CreateGroup's owner and JoinGroup's account must be accounts auth knows
(accounts.py), checked before the transaction. Lists come a page at a time;
cursors are opaque to callers (validation.encode_cursor): the directory's is
the last (sort_key, id), the member list's the last (joined_at, account_id).
"""

from __future__ import annotations

import logging
from datetime import datetime

import grpc

from chorus.membership.accounts import Accounts
from chorus.membership.errors import (
    AccountNotFound,
    AuthUnavailable,
    GroupNameTaken,
    GroupNotFound,
    InvalidInput,
    LimitReached,
    MembershipError,
    StorageUnavailable,
)
from chorus.common.grpcerrors import reports_errors
from chorus.common.grpcerrors import status_for as common_status_for
from chorus.membership.broker_notifier import Notifier, NullNotifier
from chorus.membership.storage import GroupInfo, MembershipStore
from chorus.membership.validation import decode_cursor, encode_cursor, page_size
from chorus.wire.pb import membership_pb2 as pb
from chorus.wire.pb import membership_pb2_grpc as pb_grpc

__all__ = ["MembershipServicer", "DEFAULT_DIRECTORY_PAGE_SIZE", "MAX_DIRECTORY_PAGE_SIZE", "MAX_MEMBER_PAGE_SIZE",
           "status_for", "INTERNAL_ERROR_DETAILS"]

DEFAULT_DIRECTORY_PAGE_SIZE = 200  # ListGroups with limit 0
MAX_DIRECTORY_PAGE_SIZE = 1000  # larger limits are capped, not refused
MAX_MEMBER_PAGE_SIZE = 1000  # ListGroupMembers' default and cap: what one auth GetAccounts call takes
INTERNAL_ERROR_DETAILS = "internal error in the membership service"

# Looked up along the exception's MRO, so GroupFull and TooManyGroups share LimitReached's status.
_STATUS_BY_ERROR: dict[type[MembershipError], grpc.StatusCode] = {
    InvalidInput: grpc.StatusCode.INVALID_ARGUMENT,
    GroupNotFound: grpc.StatusCode.NOT_FOUND,
    AccountNotFound: grpc.StatusCode.NOT_FOUND,
    GroupNameTaken: grpc.StatusCode.ALREADY_EXISTS,
    LimitReached: grpc.StatusCode.FAILED_PRECONDITION,
    StorageUnavailable: grpc.StatusCode.UNAVAILABLE,
    AuthUnavailable: grpc.StatusCode.UNAVAILABLE,
}


def status_for(error: MembershipError) -> grpc.StatusCode:
    """The status for ``error``: its own class's entry, else its nearest ancestor's, else INTERNAL."""
    return common_status_for(error, _STATUS_BY_ERROR)


_reports_errors = reports_errors(MembershipError, _STATUS_BY_ERROR, log=logging.getLogger(__name__),
                                 internal_details=INTERNAL_ERROR_DETAILS)


def _group(info: GroupInfo) -> pb.Group:
    return pb.Group(id=info.id, name=info.name, owner_id=info.owner_id, member_count=info.member_count)


class MembershipServicer(pb_grpc.MembershipServicer):
    def __init__(self, store: MembershipStore, accounts: Accounts, notifier: Notifier | None = None) -> None:
        self._store = store
        self._accounts = accounts
        self._notifier = notifier or NullNotifier()

    def _announce(self, account_id: str, info: GroupInfo, *, joined: bool, change_id: int) -> None:
        self._notifier.notify(account_id, info.id, info.name, joined, change_id=change_id)

    @_reports_errors
    def CreateGroup(self, request: pb.CreateGroupRequest, context) -> pb.CreateGroupResponse:
        self._accounts.require(request.owner_id, field="owner_id")
        info, change_id = self._store.create_group(request.owner_id, request.name)
        self._announce(info.owner_id, info, joined=True, change_id=change_id)
        return pb.CreateGroupResponse(group=_group(info))

    @_reports_errors
    def JoinGroup(self, request: pb.JoinGroupRequest, context) -> pb.JoinGroupResponse:
        self._accounts.require(request.account_id, field="account_id")
        info, change_id = self._store.join(request.group_id, request.account_id)
        if change_id is not None:
            self._announce(request.account_id, info, joined=True, change_id=change_id)
        return pb.JoinGroupResponse(group=_group(info), changed=change_id is not None)

    @_reports_errors
    def LeaveGroup(self, request: pb.LeaveGroupRequest, context) -> pb.LeaveGroupResponse:
        info, change_id = self._store.leave(request.group_id, request.account_id)
        if change_id is not None:
            self._announce(request.account_id, info, joined=False, change_id=change_id)
        return pb.LeaveGroupResponse(group=_group(info), changed=change_id is not None)

    @_reports_errors
    def ListUserGroups(self, request: pb.ListUserGroupsRequest, context) -> pb.ListUserGroupsResponse:
        infos = self._store.groups_of(request.account_id)
        return pb.ListUserGroupsResponse(groups=[_group(info) for info in infos])

    @_reports_errors
    def ListGroupMembers(self, request: pb.ListGroupMembersRequest, context) -> pb.ListGroupMembersResponse:
        limit = page_size(request.limit, default=MAX_MEMBER_PAGE_SIZE, maximum=MAX_MEMBER_PAGE_SIZE)
        after = None
        if request.cursor:
            joined_at, account_id = decode_cursor(request.cursor, parts=2)
            after = (_timestamp(joined_at), account_id)
        page = self._store.member_page(request.group_id, limit, after)
        next_cursor = "" if page.next_after is None else encode_cursor(page.next_after[0].isoformat(),
                                                                       page.next_after[1])
        return pb.ListGroupMembersResponse(account_ids=page.account_ids, next_cursor=next_cursor)

    @_reports_errors
    def ListGroups(self, request: pb.ListGroupsRequest, context) -> pb.ListGroupsResponse:
        limit = page_size(request.limit, default=DEFAULT_DIRECTORY_PAGE_SIZE, maximum=MAX_DIRECTORY_PAGE_SIZE)
        after = decode_cursor(request.cursor, parts=2) if request.cursor else None
        # proto3 strings have no "unset": an empty account_id means "no viewer".
        page = self._store.directory_page(request.account_id or None, limit, query=request.query, after=after)
        return pb.ListGroupsResponse(
            groups=[pb.DirectoryEntry(group=_group(info), joined=joined) for info, joined in page.entries],
            next_cursor="" if page.next_after is None else encode_cursor(*page.next_after),
        )

    @_reports_errors
    def IsMember(self, request: pb.IsMemberRequest, context) -> pb.IsMemberResponse:
        return pb.IsMemberResponse(member=self._store.is_member(request.group_id, request.account_id))


def _timestamp(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput("cursor is not one this service gave out; start again without it") from None
