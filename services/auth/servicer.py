"""The Auth gRPC service: protobuf in, rules and store calls, protobuf out.

Domain errors (errors.py) are mapped to a gRPC status in one table; anything
else is a bug on our side: logged with its traceback, answered INTERNAL with a
fixed message (no internals leak to the caller), and the server keeps serving.
"""

from __future__ import annotations

import logging

import grpc

from chorus.auth.errors import (AuthError, BadCredentials, InvalidInput, InvalidToken,
                                StorageUnavailable, UsernameTaken)
from chorus.auth.passwords import Passwords
from chorus.auth.storage import AccountRecord, AuthStore
from chorus.auth.tokens import Claims, TokenSigner
from chorus.auth.validation import account_ids, check_display_name, check_password, check_username
from chorus.common.grpcerrors import reports_errors
from chorus.common.grpcerrors import status_for as common_status_for
from chorus.pb import auth_pb2 as pb
from chorus.pb import auth_pb2_grpc as pb_grpc

__all__ = ["AuthServicer", "status_for", "INTERNAL_ERROR_DETAILS"]

INTERNAL_ERROR_DETAILS = "internal error in the auth service"

_log = logging.getLogger(__name__)

_STATUS_BY_ERROR: dict[type[AuthError], grpc.StatusCode] = {
    InvalidInput: grpc.StatusCode.INVALID_ARGUMENT,
    UsernameTaken: grpc.StatusCode.ALREADY_EXISTS,
    BadCredentials: grpc.StatusCode.UNAUTHENTICATED,
    InvalidToken: grpc.StatusCode.UNAUTHENTICATED,
    StorageUnavailable: grpc.StatusCode.UNAVAILABLE,
}


def status_for(error: AuthError) -> grpc.StatusCode:
    return common_status_for(error, _STATUS_BY_ERROR)


_reports_errors = reports_errors(AuthError, _STATUS_BY_ERROR, log=_log, internal_details=INTERNAL_ERROR_DETAILS)


def _account(record: AccountRecord) -> pb.Account:
    return pb.Account(id=record.id, username=record.username, display_name=record.display_name)


class AuthServicer(pb_grpc.AuthServicer):
    def __init__(self, store: AuthStore, passwords: Passwords, signer: TokenSigner) -> None:
        self._store = store
        self._passwords = passwords
        self._signer = signer

    @_reports_errors
    def Register(self, request: pb.RegisterRequest, context) -> pb.RegisterResponse:
        username = check_username(request.username)
        password = check_password(request.password)
        display_name = check_display_name(request.display_name, default=username)
        record = self._store.create_account(username, display_name, self._passwords.hash(password))
        return pb.RegisterResponse(account=_account(record))

    @_reports_errors
    def Login(self, request: pb.LoginRequest, context) -> pb.LoginResponse:
        record = self._store.find_by_username(request.username) if request.username else None
        if not self._passwords.verify(record.password_hash if record else None, request.password):
            raise BadCredentials()
        if self._passwords.needs_rehash(record.password_hash):
            self._store.update_password_hash(record.id, self._passwords.hash(request.password))
        token, claims = self._signer.issue(record.id)
        return pb.LoginResponse(token=token, account=_account(record),
                                expires_at_ms=claims.expires_at * 1000)

    @_reports_errors
    def Authenticate(self, request: pb.AuthenticateRequest, context) -> pb.AuthenticateResponse:
        claims = self._verified(request.token)
        record = self._store.get_account(claims.account_id)
        if record is None:
            raise InvalidToken("this account no longer exists")
        return pb.AuthenticateResponse(account=_account(record), expires_at_ms=claims.expires_at * 1000)

    @_reports_errors
    def Logout(self, request: pb.LogoutRequest, context) -> pb.LogoutResponse:
        claims = self._signer.verify(request.token)  # a revoked token may log out again
        self._store.revoke(claims.token_id, claims.expires_at)
        return pb.LogoutResponse()

    @_reports_errors
    def GetAccounts(self, request: pb.GetAccountsRequest, context) -> pb.GetAccountsResponse:
        records = self._store.get_accounts(account_ids(request.ids))
        return pb.GetAccountsResponse(accounts=[_account(record) for record in records])

    def _verified(self, token: str) -> Claims:
        claims = self._signer.verify(token)
        if self._store.is_revoked(claims.token_id):
            raise InvalidToken("this token was logged out; log in again")
        return claims
