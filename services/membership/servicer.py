"""The Membership gRPC service: protobuf in, store call, protobuf out.

Validation and every rule live in the store; this module only converts, and
maps the domain errors (see errors.py) to a gRPC status in one table
(chorus.common.grpcerrors: anything else is logged and answered INTERNAL).

Every committed change of who is in a group (CreateGroup's owner, JoinGroup
and LeaveGroup with ``changed``) is handed to the injected notifier, which
tells the broker so live sessions follow it, whoever called us. Invariant:
one account's changes reach the notifier in the order they were committed.
The store call and the hand-over run under a lock per account (striped:
accounts share ``_ACCOUNT_LOCK_STRIPES`` locks), so a join and a leave of the
same account racing on two threads cannot be announced in the wrong order.
``notify`` never blocks, so the lock is held for the transaction only. (Two
membership processes on one database do not share these locks.)
"""

from __future__ import annotations

import logging
import threading

import grpc

from chorus.membership.errors import (
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
from chorus.membership.validation import page_size
from chorus.wire.pb import membership_pb2 as pb
from chorus.wire.pb import membership_pb2_grpc as pb_grpc

__all__ = ["MembershipServicer", "DEFAULT_DIRECTORY_PAGE_SIZE", "MAX_DIRECTORY_PAGE_SIZE", "status_for",
           "INTERNAL_ERROR_DETAILS"]

DEFAULT_DIRECTORY_PAGE_SIZE = 200  # ListGroups with limit 0
MAX_DIRECTORY_PAGE_SIZE = 1000  # larger limits are capped, not refused
INTERNAL_ERROR_DETAILS = "internal error in the membership service"
_ACCOUNT_LOCK_STRIPES = 64

# Looked up along the exception's MRO, so GroupFull and TooManyGroups share LimitReached's status.
_STATUS_BY_ERROR: dict[type[MembershipError], grpc.StatusCode] = {
    InvalidInput: grpc.StatusCode.INVALID_ARGUMENT,
    GroupNotFound: grpc.StatusCode.NOT_FOUND,
    GroupNameTaken: grpc.StatusCode.ALREADY_EXISTS,
    LimitReached: grpc.StatusCode.FAILED_PRECONDITION,
    StorageUnavailable: grpc.StatusCode.UNAVAILABLE,
}


def status_for(error: MembershipError) -> grpc.StatusCode:
    """The status for ``error``: its own class's entry, else its nearest ancestor's, else INTERNAL."""
    return common_status_for(error, _STATUS_BY_ERROR)


_reports_errors = reports_errors(MembershipError, _STATUS_BY_ERROR, log=logging.getLogger(__name__),
                                 internal_details=INTERNAL_ERROR_DETAILS)


def _group(info: GroupInfo) -> pb.Group:
    return pb.Group(id=info.id, name=info.name, owner_id=info.owner_id, member_count=info.member_count)


class MembershipServicer(pb_grpc.MembershipServicer):
    def __init__(self, store: MembershipStore, notifier: Notifier | None = None) -> None:
        self._store = store
        self._notifier = notifier or NullNotifier()
        self._account_locks = [threading.Lock() for _ in range(_ACCOUNT_LOCK_STRIPES)]

    def _ordered(self, account_id: str) -> threading.Lock:
        """The lock that orders ``account_id``'s commits and announcements (see module doc)."""
        return self._account_locks[hash(account_id) % _ACCOUNT_LOCK_STRIPES]

    def _announce(self, account_id: str, info: GroupInfo, *, joined: bool) -> None:
        self._notifier.notify(account_id, info.id, info.name, joined)

    @_reports_errors
    def CreateGroup(self, request: pb.CreateGroupRequest, context) -> pb.CreateGroupResponse:
        with self._ordered(request.owner_id):
            info = self._store.create_group(request.owner_id, request.name)
            self._announce(info.owner_id, info, joined=True)
        return pb.CreateGroupResponse(group=_group(info))

    @_reports_errors
    def JoinGroup(self, request: pb.JoinGroupRequest, context) -> pb.JoinGroupResponse:
        with self._ordered(request.account_id):
            info, changed = self._store.join(request.group_id, request.account_id)
            if changed:
                self._announce(request.account_id, info, joined=True)
        return pb.JoinGroupResponse(group=_group(info), changed=changed)

    @_reports_errors
    def LeaveGroup(self, request: pb.LeaveGroupRequest, context) -> pb.LeaveGroupResponse:
        with self._ordered(request.account_id):
            info, changed = self._store.leave(request.group_id, request.account_id)
            if changed:
                self._announce(request.account_id, info, joined=False)
        return pb.LeaveGroupResponse(group=_group(info), changed=changed)

    @_reports_errors
    def ListUserGroups(self, request: pb.ListUserGroupsRequest, context) -> pb.ListUserGroupsResponse:
        infos = self._store.groups_of(request.account_id)
        return pb.ListUserGroupsResponse(groups=[_group(info) for info in infos])

    @_reports_errors
    def ListGroupMembers(self, request: pb.ListGroupMembersRequest, context) -> pb.ListGroupMembersResponse:
        return pb.ListGroupMembersResponse(account_ids=self._store.members_of(request.group_id))

    @_reports_errors
    def ListGroups(self, request: pb.ListGroupsRequest, context) -> pb.ListGroupsResponse:
        limit = page_size(request.limit, default=DEFAULT_DIRECTORY_PAGE_SIZE, maximum=MAX_DIRECTORY_PAGE_SIZE)
        # proto3 strings have no "unset": an empty account_id means "no viewer".
        entries = self._store.directory(request.account_id or None, limit)
        return pb.ListGroupsResponse(
            groups=[pb.DirectoryEntry(group=_group(info), joined=joined) for info, joined in entries]
        )
