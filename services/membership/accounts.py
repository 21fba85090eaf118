"""Does an account exist? Asked of the auth service (GetAccounts), so that no caller can create
groups for, or fill groups with, account ids that auth never issued.

Accounts are never deleted, so a "yes" is remembered (the last ``cache_size``
ids, least recently used forgotten first); a "no" never is, since the account
may be registered a moment later. When auth cannot be asked the answer is
AuthUnavailable (UNAVAILABLE), never a silent yes.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from typing import Protocol

import grpc

from chorus.membership.errors import AccountNotFound, AuthUnavailable, InvalidInput
from chorus.membership.validation import check_id
from chorus.wire.pb import auth_pb2, auth_pb2_grpc

__all__ = ["Accounts", "AuthAccounts", "DEFAULT_CACHE_SIZE"]

DEFAULT_CACHE_SIZE = 10_000
_log = logging.getLogger(__name__)


class Accounts(Protocol):
    def require(self, account_id: str, *, field: str) -> None:
        """Return if the account exists; AccountNotFound, InvalidInput or AuthUnavailable otherwise."""


class AuthAccounts:
    def __init__(self, channel: grpc.Channel, *, timeout_secs: float, cache_size: int = DEFAULT_CACHE_SIZE) -> None:
        self._stub = auth_pb2_grpc.AuthStub(channel)
        self._timeout_secs = timeout_secs
        self._cache_size = cache_size
        self._known: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()  # the servicer runs on a thread pool

    def require(self, account_id: str, *, field: str) -> None:
        account_id = check_id(account_id, field=field)
        with self._lock:
            if account_id in self._known:
                self._known.move_to_end(account_id)
                return
        if not self._exists(account_id):
            raise AccountNotFound(account_id)
        with self._lock:
            self._known[account_id] = None
            while len(self._known) > self._cache_size:
                self._known.popitem(last=False)

    def _exists(self, account_id: str) -> bool:
        try:
            reply = self._stub.GetAccounts(auth_pb2.GetAccountsRequest(ids=[account_id]),
                                           timeout=self._timeout_secs)
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.INVALID_ARGUMENT:
                raise InvalidInput(exc.details()) from None
            _log.warning("auth service: %s %s", exc.code(), exc.details())
            raise AuthUnavailable("the auth service is unavailable, so accounts cannot be checked; try again") \
                from None
        return any(account.id == account_id for account in reply.accounts)
