"""Async clients of the auth and membership gRPC services, speaking plain dicts.

Every gRPC error is turned into an ApiError here (errors.from_grpc), once, so
the HTTP and WebSocket handlers deal only in the gateway's own errors.
"""

from __future__ import annotations

import grpc

from chorus.wire.pb import auth_pb2, auth_pb2_grpc, membership_pb2, membership_pb2_grpc

from .errors import from_grpc

__all__ = ["AuthClient", "MembershipClient", "user_dict", "group_dict"]


def user_dict(account: auth_pb2.Account) -> dict:
    return {"id": account.id, "username": account.username, "display_name": account.display_name}


def group_dict(group: membership_pb2.Group) -> dict:
    return {"id": group.id, "name": group.name}


class _Client:
    service = ""

    def __init__(self, channel: grpc.aio.Channel, *, timeout_secs: float) -> None:
        self._channel = channel
        self._timeout_secs = timeout_secs

    async def _call(self, method, request):
        try:
            return await method(request, timeout=self._timeout_secs)
        except grpc.aio.AioRpcError as exc:
            raise from_grpc(exc, self.service) from None


class AuthClient(_Client):
    service = "auth"

    def __init__(self, channel: grpc.aio.Channel, *, timeout_secs: float) -> None:
        super().__init__(channel, timeout_secs=timeout_secs)
        self._stub = auth_pb2_grpc.AuthStub(channel)

    async def register(self, username: str, password: str, display_name: str) -> dict:
        reply = await self._call(self._stub.Register, auth_pb2.RegisterRequest(
            username=username, password=password, display_name=display_name))
        return user_dict(reply.account)

    async def login(self, username: str, password: str,
                    device_token: str = "") -> tuple[str, dict, int, tuple[str, int]]:
        """(token, user, expires_at_ms, (device token, its expiry in ms))."""
        reply = await self._call(self._stub.Login, auth_pb2.LoginRequest(
            username=username, password=password, device_token=device_token))
        return reply.token, user_dict(reply.account), reply.expires_at_ms, (reply.device_token,
                                                                            reply.device_expires_at_ms)

    async def authenticate(self, token: str) -> tuple[dict, int, str]:
        """(user, expires_at_ms, token id) of one of Chorus's own tokens."""
        reply = await self._call(self._stub.Authenticate, auth_pb2.AuthenticateRequest(token=token))
        return user_dict(reply.account), reply.expires_at_ms, reply.token_id

    async def resolve_external_account(self, issuer: str, subject: str, display_name: str) -> dict:
        """The account of a site's user, created on first sight; its display name kept up to date."""
        reply = await self._call(self._stub.ResolveExternalAccount, auth_pb2.ResolveExternalAccountRequest(
            issuer=issuer, subject=subject, display_name=display_name))
        return user_dict(reply.account)

    async def revocations(self, since_ms: int) -> tuple[list[str], int]:
        """(ids of tokens revoked at or after ``since_ms``, auth's time of looking), both in ms."""
        reply = await self._call(self._stub.ListRevocations, auth_pb2.ListRevocationsRequest(since_ms=since_ms))
        return list(reply.token_ids), reply.as_of_ms

    async def logout(self, token: str) -> None:
        await self._call(self._stub.Logout, auth_pb2.LogoutRequest(token=token))

    async def accounts(self, ids) -> dict[str, dict]:
        """id -> public profile; unknown ids are left out."""
        reply = await self._call(self._stub.GetAccounts, auth_pb2.GetAccountsRequest(ids=list(ids)))
        return {a.id: user_dict(a) for a in reply.accounts}


class MembershipClient(_Client):
    service = "membership"

    def __init__(self, channel: grpc.aio.Channel, *, timeout_secs: float) -> None:
        super().__init__(channel, timeout_secs=timeout_secs)
        self._stub = membership_pb2_grpc.MembershipStub(channel)

    async def user_groups(self, account_id: str) -> dict[str, str]:
        """The account's groups as id -> name, in the service's (name) order."""
        reply = await self._call(self._stub.ListUserGroups,
                                 membership_pb2.ListUserGroupsRequest(account_id=account_id))
        return {g.id: g.name for g in reply.groups}

    async def is_member(self, group_id: str, account_id: str) -> bool:
        """Whether the account is in the group; NotFound for an unknown group."""
        reply = await self._call(self._stub.IsMember, membership_pb2.IsMemberRequest(
            group_id=group_id, account_id=account_id))
        return reply.member

    async def members(self, group_id: str, cursor: str = "") -> tuple[list[str], str | None]:
        """One page of the group's account ids (at most what one auth GetAccounts call takes) and
        the cursor of the next page (None on the last); NotFound for an unknown group."""
        reply = await self._call(self._stub.ListGroupMembers,
                                 membership_pb2.ListGroupMembersRequest(group_id=group_id, cursor=cursor))
        return list(reply.account_ids), reply.next_cursor or None

    async def directory(self, account_id: str, query: str = "",
                        cursor: str = "") -> tuple[list[dict], str | None]:
        """One page of the directory (only names containing ``query`` when given) and the
        cursor of the next page (None on the last)."""
        reply = await self._call(self._stub.ListGroups, membership_pb2.ListGroupsRequest(
            account_id=account_id, query=query, cursor=cursor))
        return ([{**group_dict(e.group), "member_count": e.group.member_count, "joined": e.joined}
                 for e in reply.groups], reply.next_cursor or None)

    async def create_group(self, owner_id: str, name: str) -> dict:
        reply = await self._call(self._stub.CreateGroup,
                                 membership_pb2.CreateGroupRequest(owner_id=owner_id, name=name))
        return group_dict(reply.group)

    async def join(self, group_id: str, account_id: str) -> tuple[dict, bool]:
        reply = await self._call(self._stub.JoinGroup, membership_pb2.JoinGroupRequest(
            group_id=group_id, account_id=account_id))
        return group_dict(reply.group), reply.changed

    async def leave(self, group_id: str, account_id: str) -> tuple[dict, bool]:
        reply = await self._call(self._stub.LeaveGroup, membership_pb2.LeaveGroupRequest(
            group_id=group_id, account_id=account_id))
        return group_dict(reply.group), reply.changed
