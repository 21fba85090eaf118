"""The Auth gRPC service: protobuf in, rules and store calls, protobuf out.

Domain errors (errors.py) are mapped to a gRPC status in one table; anything
else is a bug on our side: logged with its traceback, answered INTERNAL with a
fixed message (no internals leak to the caller), and the server keeps serving.

Failed logins are limited per account (the username as typed, case folded,
known or not, so the answer says nothing about which names exist): a token
bucket of ``login_failures`` per account, in this process. Each attempt takes
a token before the password is checked (so a burst of parallel guesses is
bounded too), and a success gives it back. With the bucket empty, Login
answers RESOURCE_EXHAUSTED with ``retry-after`` (seconds) in the trailing
metadata, without checking the password: the right one is refused too until
the bucket refills, which is what makes guessing slow. (So anyone can lock an
account out of logging in for a while; tokens already issued keep working.)
"""

from __future__ import annotations

import logging
import threading
import time

import grpc

from chorus.auth.config import DEFAULT_LOGIN_FAILURE_WINDOW_SECS, DEFAULT_LOGIN_FAILURES_PER_ACCOUNT
from chorus.auth.errors import (AuthError, BadCredentials, InvalidInput, InvalidToken,
                                StorageUnavailable, TooManyFailedLogins, UsernameTaken)
from chorus.auth.passwords import Passwords
from chorus.auth.storage import AccountRecord, AuthStore
from chorus.auth.tokens import Claims, TokenSigner
from chorus.auth.validation import (account_ids, check_display_name, check_login_name, check_password,
                                    check_username)
from chorus.common.grpcerrors import reports_errors
from chorus.common.ratelimit import KeyedLimiter, Rate
from chorus.common.grpcerrors import status_for as common_status_for
from chorus.wire.pb import auth_pb2 as pb
from chorus.wire.pb import auth_pb2_grpc as pb_grpc

__all__ = ["AuthServicer", "status_for", "INTERNAL_ERROR_DETAILS", "DEFAULT_LOGIN_FAILURES"]

INTERNAL_ERROR_DETAILS = "internal error in the auth service"
DEFAULT_LOGIN_FAILURES = Rate.per_window(DEFAULT_LOGIN_FAILURES_PER_ACCOUNT, DEFAULT_LOGIN_FAILURE_WINDOW_SECS)
_MAX_LIMIT_KEY_CHARS = 64  # longer usernames cannot exist; keys stay small

_log = logging.getLogger(__name__)

_STATUS_BY_ERROR: dict[type[AuthError], grpc.StatusCode] = {
    InvalidInput: grpc.StatusCode.INVALID_ARGUMENT,
    UsernameTaken: grpc.StatusCode.ALREADY_EXISTS,
    BadCredentials: grpc.StatusCode.UNAUTHENTICATED,
    InvalidToken: grpc.StatusCode.UNAUTHENTICATED,
    TooManyFailedLogins: grpc.StatusCode.RESOURCE_EXHAUSTED,
    StorageUnavailable: grpc.StatusCode.UNAVAILABLE,
}


def status_for(error: AuthError) -> grpc.StatusCode:
    return common_status_for(error, _STATUS_BY_ERROR)


_reports_errors = reports_errors(AuthError, _STATUS_BY_ERROR, log=_log, internal_details=INTERNAL_ERROR_DETAILS)


def _account(record: AccountRecord) -> pb.Account:
    return pb.Account(id=record.id, username=record.username, display_name=record.display_name)


class AuthServicer(pb_grpc.AuthServicer):
    def __init__(self, store: AuthStore, passwords: Passwords, signer: TokenSigner, *,
                 login_failures: Rate = DEFAULT_LOGIN_FAILURES) -> None:
        self._store = store
        self._passwords = passwords
        self._signer = signer
        self._failed_logins = KeyedLimiter(login_failures)  # see the module docstring
        self._failed_logins_lock = threading.Lock()  # the servicer runs on a thread pool

    @_reports_errors
    def Register(self, request: pb.RegisterRequest, context) -> pb.RegisterResponse:
        username = check_username(request.username)
        password = check_password(request.password)
        display_name = check_display_name(request.display_name, default=username)
        record = self._store.create_account(username, display_name, self._passwords.hash(password))
        return pb.RegisterResponse(account=_account(record))

    @_reports_errors
    def Login(self, request: pb.LoginRequest, context) -> pb.LoginResponse:
        check_login_name(request.username)
        key = request.username.casefold()[:_MAX_LIMIT_KEY_CHARS]
        with self._failed_logins_lock:
            wait = self._failed_logins.take(key, time.monotonic())
        if wait:
            context.set_trailing_metadata((("retry-after", f"{wait:.3f}"),))
            raise TooManyFailedLogins(wait)
        record = self._store.find_by_username(request.username) if request.username else None
        if not self._passwords.verify(record.password_hash if record else None, request.password):
            raise BadCredentials()
        with self._failed_logins_lock:
            self._failed_logins.give_back(key, time.monotonic())
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
