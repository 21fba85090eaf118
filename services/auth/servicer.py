"""The Auth gRPC service: protobuf in, rules and store calls, protobuf out.

Domain errors (errors.py) are mapped to a gRPC status in one table; anything
else is a bug on our side: logged with its traceback, answered INTERNAL with a
fixed message (no internals leak to the caller), and the server keeps serving.

Failed logins are limited OWASP's "device cookie" way, so that a stranger's
guesses cannot lock the owner out. Each Login may carry a device token
(tokens.DeviceTokens) from an earlier successful login of the same username:

- With a valid one, the attempt counts in that device's own bucket
  (``device_login_failures``, keyed by the device id) and not against the
  account: the owner logs in from a device they used before, whatever
  strangers do to the account meanwhile.
- Without one (none, expired, tampered with, or naming another username: all
  "untrusted"), it counts in the account's bucket (``login_failures``, keyed by
  the username as typed, case folded, known or not, so the answer says nothing
  about which names exist), shared by every untrusted client. With that bucket
  empty the right password is refused too until it refills: that is what
  makes online guessing slow; untrusted clients can be locked out this way,
  known devices cannot.

Each attempt takes a token before the password is checked (so a burst of
parallel guesses is bounded too), and a success gives it back. With the bucket
empty, Login answers RESOURCE_EXHAUSTED with ``retry-after`` (seconds) in the
trailing metadata, without checking the password. A success returns a device
token (the presented one's device id renewed, or a new one). The buckets live
in the database (limits.SharedLimiter), so several auth replicas count every
failure once, against the same limits.
"""

from __future__ import annotations

import logging
import time

import grpc

from chorus.auth.config import (DEFAULT_LOGIN_FAILURE_WINDOW_SECS, DEFAULT_LOGIN_FAILURES_PER_ACCOUNT,
                                DEFAULT_LOGIN_FAILURES_PER_DEVICE)
from chorus.auth.errors import (AuthError, BadCredentials, InvalidInput, InvalidToken,
                                StorageUnavailable, TooManyFailedLogins, UsernameTaken)
from chorus.auth.passwords import Passwords
from chorus.auth.limits import SharedLimiter
from chorus.auth.storage import AccountRecord, AuthStore
from chorus.auth.tokens import Claims, DeviceTokens, TokenSigner
from chorus.auth.validation import (account_ids, check_display_name, check_external_id, check_login_name,
                                    check_password, check_username, external_username)
from chorus.common.grpcerrors import reports_errors
from chorus.common.ratelimit import Rate
from chorus.common.grpcerrors import status_for as common_status_for
from chorus.wire.pb import auth_pb2 as pb
from chorus.wire.pb import auth_pb2_grpc as pb_grpc

__all__ = ["AuthServicer", "status_for", "INTERNAL_ERROR_DETAILS", "DEFAULT_LOGIN_FAILURES"]

INTERNAL_ERROR_DETAILS = "internal error in the auth service"
DEFAULT_LOGIN_FAILURES = Rate.per_window(DEFAULT_LOGIN_FAILURES_PER_ACCOUNT, DEFAULT_LOGIN_FAILURE_WINDOW_SECS)
DEFAULT_DEVICE_LOGIN_FAILURES = Rate.per_window(DEFAULT_LOGIN_FAILURES_PER_DEVICE, DEFAULT_LOGIN_FAILURE_WINDOW_SECS)
_MAX_LIMIT_KEY_CHARS = 64  # longer usernames cannot exist; keys stay small
_USERNAME_ATTEMPTS = 4  # the derived username, then random ones (validation.external_username)
MAX_REVOCATIONS_PER_CALL = 10_000  # ListRevocations: far more logouts than a few seconds see

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
    def __init__(self, store: AuthStore, passwords: Passwords, signer: TokenSigner, devices: DeviceTokens, *,
                 login_failures: Rate = DEFAULT_LOGIN_FAILURES,
                 device_login_failures: Rate = DEFAULT_DEVICE_LOGIN_FAILURES) -> None:
        self._store = store
        self._passwords = passwords
        self._signer = signer
        self._devices = devices
        # See the module docstring: untrusted attempts by username key, known devices by device id.
        # In the database, so that every replica counts against the same limits.
        self._account_failures = SharedLimiter(store, login_failures, kind="account")
        self._device_failures = SharedLimiter(store, device_login_failures, kind="device")

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
        username_key = request.username.casefold()[:_MAX_LIMIT_KEY_CHARS]
        device_id = self._devices.device_of(request.device_token, username_key)
        if device_id is None:
            limiter, key = self._account_failures, username_key
        else:
            limiter, key = self._device_failures, device_id
        wait = limiter.take(key, time.time())
        if wait:
            context.set_trailing_metadata((("retry-after", f"{wait:.3f}"),))
            raise TooManyFailedLogins(wait, known_device=device_id is not None)
        record = self._store.find_by_username(request.username) if request.username else None
        if not self._passwords.verify(record.password_hash if record else None, request.password):
            raise BadCredentials()
        limiter.give_back(key, time.time())
        if self._passwords.needs_rehash(record.password_hash):
            self._store.update_password_hash(record.id, self._passwords.hash(request.password))
        token, claims = self._signer.issue(record.id)
        device_token, device_expires_at = self._devices.issue(username_key, device_id)
        return pb.LoginResponse(token=token, account=_account(record), expires_at_ms=claims.expires_at * 1000,
                                device_token=device_token, device_expires_at_ms=device_expires_at * 1000)

    @_reports_errors
    def Authenticate(self, request: pb.AuthenticateRequest, context) -> pb.AuthenticateResponse:
        claims = self._verified(request.token)
        record = self._store.get_account(claims.account_id)
        if record is None:
            raise InvalidToken("this account no longer exists")
        return pb.AuthenticateResponse(account=_account(record), expires_at_ms=claims.expires_at * 1000,
                                       token_id=claims.token_id)

    @_reports_errors
    def Logout(self, request: pb.LogoutRequest, context) -> pb.LogoutResponse:
        claims = self._signer.verify(request.token)  # a revoked token may log out again
        self._store.revoke(claims.token_id, claims.expires_at)
        return pb.LogoutResponse()

    @_reports_errors
    def ListRevocations(self, request: pb.ListRevocationsRequest, context) -> pb.ListRevocationsResponse:
        as_of_ms = int(time.time() * 1000)  # before the query: a later revocation is in the next answer
        ids = self._store.revoked_since(request.since_ms, MAX_REVOCATIONS_PER_CALL)
        return pb.ListRevocationsResponse(token_ids=ids, as_of_ms=as_of_ms)

    @_reports_errors
    def ResolveExternalAccount(self, request: pb.ResolveExternalAccountRequest,
                               context) -> pb.ResolveExternalAccountResponse:
        issuer = check_external_id(request.issuer, "issuer")
        subject = check_external_id(request.subject, "subject")
        display_name = check_display_name(request.display_name, default="")
        record = self._store.find_external(issuer, subject)
        if record is not None:
            if display_name and display_name != record.display_name:
                record = self._store.update_display_name(record.id, display_name) or record
            return pb.ResolveExternalAccountResponse(account=_account(record))
        for attempt in range(_USERNAME_ATTEMPTS):
            username = external_username(issuer, subject, attempt)
            try:
                created = self._store.create_external(issuer, subject, username,
                                                      display_name or _default_display_name(subject, username))
            except UsernameTaken:
                continue
            if created is None:  # another call saw the pair first: its account is the one
                return pb.ResolveExternalAccountResponse(account=_account(self._store.find_external(issuer, subject)))
            return pb.ResolveExternalAccountResponse(account=_account(created), created=True)
        raise StorageUnavailable("could not find a free username for this account; try again")

    @_reports_errors
    def GetAccounts(self, request: pb.GetAccountsRequest, context) -> pb.GetAccountsResponse:
        records = self._store.get_accounts(account_ids(request.ids))
        return pb.GetAccountsResponse(accounts=[_account(record) for record in records])

    def _verified(self, token: str) -> Claims:
        claims = self._signer.verify(token)
        if self._store.is_revoked(claims.token_id):
            raise InvalidToken("this token was logged out; log in again")
        return claims


def _default_display_name(subject: str, username: str) -> str:
    """A site user without a name is shown by the site's id for them, when that makes a valid name."""
    try:
        return check_display_name(subject, default=username)
    except InvalidInput:
        return username
