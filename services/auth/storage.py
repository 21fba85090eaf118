"""Accounts and revoked tokens in SQL (SQLite or PostgreSQL), behind a store that speaks plain values.

Invariants:
- The tables never leave this module: callers get frozen ``AccountRecord`` values.
- Usernames are unique ignoring case: the unique index is on ``username_key``,
  so two racing registrations cannot both win.
- Only password hashes are stored; an account of another website's user has
  none (the empty hash, which no password matches). Such an account is found by
  its (issuer, subject) pair, the primary key of ``external_accounts``: two
  racing first sights of one pair create one account.
- Failed-login limits are token buckets in ``login_limits``, read and written
  with the row locked, so every auth replica counts against the same limit.
- A revoked token is kept until it would have expired anyway
  (``purge_expired_revocations``), then forgotten. ``revoked_at_ms`` says when,
  so gateways can ask what was revoked since they last looked.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone

from sqlalchemy import BigInteger, delete
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel, select

from chorus.auth.errors import StorageUnavailable, UsernameTaken
from chorus.auth.validation import username_key
from chorus.common.db import translate_database_errors
from chorus.common.migrations import Schema, upgrade
from chorus.common.ids import new_id
from chorus.common.ratelimit import Rate, TokenBucket

__all__ = ["AccountRecord", "AuthStore", "SCHEMA", "migrate", "NO_PASSWORD", "MAX_LIMIT_KEY_CHARS"]

MAX_LIMIT_KEY_CHARS = 200  # a login limit's key: a kind prefix and a username or device id
NO_PASSWORD = ""  # the password hash of an account that cannot log in with a password

_log = logging.getLogger(__name__)


class AccountRow(SQLModel, table=True):
    __tablename__ = "accounts"
    id: str = Field(primary_key=True, max_length=64)
    username: str = Field(max_length=64)
    username_key: str = Field(max_length=64, unique=True)
    display_name: str = Field(max_length=128)
    password_hash: str = Field(max_length=256)
    created_at: datetime = Field(default_factory=lambda: datetime.now(timezone.utc))


class RevokedTokenRow(SQLModel, table=True):
    __tablename__ = "revoked_tokens"
    jti: str = Field(primary_key=True, max_length=64)
    expires_at: int = Field(index=True)  # Unix seconds; after this the token is dead anyway
    # Unix ms; 0 for revocations stored before gateways asked (they had no sockets to close then).
    revoked_at_ms: int = Field(default=0, sa_type=BigInteger, index=True, sa_column_kwargs={"server_default": "0"})


class ExternalAccountRow(SQLModel, table=True):
    """Which account is another website's user: (issuer, subject) as the site's tokens name them."""
    __tablename__ = "external_accounts"
    issuer: str = Field(primary_key=True, max_length=256)
    subject: str = Field(primary_key=True, max_length=256)
    account_id: str = Field(foreign_key="accounts.id", max_length=64, unique=True)


class LoginLimitRow(SQLModel, table=True):
    """A failed-login token bucket (common.ratelimit.TokenBucket), shared by every auth replica."""

    __tablename__ = "login_limits"

    key: str = Field(primary_key=True, max_length=MAX_LIMIT_KEY_CHARS)  # "account:NAME" or "device:ID"
    tokens: float
    stamp_ms: int = Field(sa_type=BigInteger)


SCHEMA = Schema("auth", [AccountRow.__table__, RevokedTokenRow.__table__, ExternalAccountRow.__table__,
                         LoginLimitRow.__table__])


def migrate(engine: Engine) -> None:
    """Bring the auth tables to the current schema (Alembic, chorus.auth.migrations)."""
    upgrade(engine, SCHEMA)


@dataclass(frozen=True)
class AccountRecord:
    id: str
    username: str
    display_name: str
    password_hash: str = field(repr=False)  # kept out of logs and tracebacks


def _record(row: AccountRow) -> AccountRecord:
    return AccountRecord(row.id, row.username, row.display_name, row.password_hash)


_database_errors = translate_database_errors(
    StorageUnavailable, "the auth database is unavailable; try again", _log)


class AuthStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @_database_errors
    def create_account(self, username: str, display_name: str, password_hash: str) -> AccountRecord:
        row = AccountRow(id=new_id("u"), username=username, username_key=username_key(username),
                         display_name=display_name, password_hash=password_hash)
        with Session(self._engine) as session:
            session.add(row)
            try:
                session.commit()
            except IntegrityError:
                raise UsernameTaken(username) from None
            return _record(row)

    @_database_errors
    def find_by_username(self, username: str) -> AccountRecord | None:
        with Session(self._engine) as session:
            row = session.exec(select(AccountRow).where(AccountRow.username_key == username_key(username))).first()
            return _record(row) if row else None

    @_database_errors
    def get_account(self, account_id: str) -> AccountRecord | None:
        with Session(self._engine) as session:
            row = session.get(AccountRow, account_id)
            return _record(row) if row else None

    @_database_errors
    def get_accounts(self, account_ids: list[str]) -> list[AccountRecord]:
        """The accounts with these ids, in the order of ``account_ids``; unknown ids are left out.

        One query however many ids; the caller bounds how many (validation.account_ids).
        """
        if not account_ids:
            return []
        with Session(self._engine) as session:
            rows = session.exec(select(AccountRow).where(AccountRow.id.in_(account_ids))).all()
            by_id = {row.id: _record(row) for row in rows}
        return [by_id[account_id] for account_id in account_ids if account_id in by_id]

    @_database_errors
    def update_password_hash(self, account_id: str, password_hash: str) -> None:
        with Session(self._engine) as session:
            row = session.get(AccountRow, account_id)
            if row is not None:
                row.password_hash = password_hash
                session.commit()

    @_database_errors
    def find_external(self, issuer: str, subject: str) -> AccountRecord | None:
        with Session(self._engine) as session:
            link = session.get(ExternalAccountRow, (issuer, subject))
            row = session.get(AccountRow, link.account_id) if link else None
            return _record(row) if row else None

    @_database_errors
    def create_external(self, issuer: str, subject: str, username: str, display_name: str) -> AccountRecord | None:
        """A new password-less account for (issuer, subject); None when the pair got one
        meanwhile (a racing first sight: ``find_external`` then has it). UsernameTaken when
        ``username`` is."""
        account = AccountRow(id=new_id("u"), username=username, username_key=username_key(username),
                             display_name=display_name, password_hash=NO_PASSWORD)
        with Session(self._engine) as session:
            try:
                session.add(account)
                session.flush()  # the account row first: the link refers to it
                session.add(ExternalAccountRow(issuer=issuer, subject=subject, account_id=account.id))
                session.commit()
            except IntegrityError:
                session.rollback()
                if session.get(ExternalAccountRow, (issuer, subject)) is not None:
                    return None
                raise UsernameTaken(username) from None
            return _record(account)

    @_database_errors
    def update_display_name(self, account_id: str, display_name: str) -> AccountRecord | None:
        with Session(self._engine) as session:
            row = session.get(AccountRow, account_id)
            if row is None:
                return None
            if row.display_name != display_name:
                row.display_name = display_name
                session.commit()
                session.refresh(row)
            return _record(row)

    @_database_errors
    def revoke(self, token_id: str, expires_at: int, now_ms: int | None = None) -> None:
        """Revoke a token; revoking twice is not an error."""
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        with Session(self._engine) as session:
            if session.get(RevokedTokenRow, token_id) is None:
                session.add(RevokedTokenRow(jti=token_id, expires_at=expires_at, revoked_at_ms=now_ms))
                try:
                    session.commit()
                except IntegrityError:
                    pass  # revoked concurrently: the outcome is the same

    @_database_errors
    def is_revoked(self, token_id: str) -> bool:
        with Session(self._engine) as session:
            return session.get(RevokedTokenRow, token_id) is not None

    @_database_errors
    def revoked_since(self, since_ms: int, limit: int) -> list[str]:
        """The ids of tokens revoked at or after ``since_ms``, oldest first, at most ``limit``."""
        with Session(self._engine) as session:
            rows = session.exec(select(RevokedTokenRow.jti).where(RevokedTokenRow.revoked_at_ms >= since_ms)
                                .order_by(RevokedTokenRow.revoked_at_ms).limit(limit)).all()
            return list(rows)

    @_database_errors
    def take_login_token(self, key: str, rate: Rate, now: float) -> float:
        """TokenBucket.take on ``key``'s shared bucket, in one transaction with its row locked, so
        attempts on every replica count against one limit. A full bucket is no row."""
        for _ in range(2):  # a concurrent first attempt may insert the row first: then it exists
            try:
                with Session(self._engine) as session:
                    row = session.exec(select(LoginLimitRow).where(LoginLimitRow.key == key)
                                       .with_for_update()).first()
                    bucket = (TokenBucket(rate, now) if row is None else
                              TokenBucket.restore(rate, row.tokens, row.stamp_ms / 1000))
                    wait = bucket.take(now)
                    tokens, stamp = bucket.state
                    if row is None:
                        row = LoginLimitRow(key=key, tokens=tokens, stamp_ms=int(stamp * 1000))
                    else:
                        row.tokens, row.stamp_ms = tokens, int(stamp * 1000)
                    session.add(row)
                    session.commit()
                    return wait
            except IntegrityError:
                continue
        raise StorageUnavailable("the login limits are busy; try again")

    @_database_errors
    def give_back_login_token(self, key: str, rate: Rate, now: float) -> None:
        """TokenBucket.give_back on ``key``'s shared bucket; the row goes once the bucket is full."""
        with Session(self._engine) as session:
            row = session.exec(select(LoginLimitRow).where(LoginLimitRow.key == key).with_for_update()).first()
            if row is None:
                return
            bucket = TokenBucket.restore(rate, row.tokens, row.stamp_ms / 1000)
            bucket.give_back(now)
            if bucket.is_full(now):
                session.delete(row)
            else:
                row.tokens, row.stamp_ms = bucket.state[0], int(bucket.state[1] * 1000)
                session.add(row)
            session.commit()

    @_database_errors
    def purge_full_login_limits(self, prefix: str, rate: Rate, now: float) -> int:
        """Forget the ``prefix`` buckets untouched for a whole refill: full again, they limit nothing."""
        refilled_before_ms = int((now - rate.burst / rate.per_sec) * 1000)
        with Session(self._engine) as session:
            result = session.exec(delete(LoginLimitRow).where(LoginLimitRow.stamp_ms < refilled_before_ms,
                                                              LoginLimitRow.key.startswith(prefix)))
            session.commit()
            return result.rowcount

    @_database_errors
    def purge_expired_revocations(self, now: float | None = None) -> int:
        now = time.time() if now is None else now
        with Session(self._engine) as session:
            result = session.exec(delete(RevokedTokenRow).where(RevokedTokenRow.expires_at < now))
            session.commit()
            return result.rowcount
