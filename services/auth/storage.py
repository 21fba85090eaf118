"""Accounts and revoked tokens in SQL (SQLite or PostgreSQL), behind a store that speaks plain values.

Invariants:
- The tables never leave this module: callers get frozen ``AccountRecord`` values.
- Usernames are unique ignoring case: the unique index is on ``username_key``,
  so two racing registrations cannot both win.
- Only password hashes are stored; an account of another website's user has
  none (the empty hash, which no password matches). Such an account is found by
  its (issuer, subject) pair, the primary key of ``external_accounts``: two
  racing first sights of one pair create one account.
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

__all__ = ["AccountRecord", "AuthStore", "SCHEMA", "migrate", "NO_PASSWORD"]

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


SCHEMA = Schema("auth", [AccountRow.__table__, RevokedTokenRow.__table__, ExternalAccountRow.__table__])


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
    def purge_expired_revocations(self, now: float | None = None) -> int:
        now = time.time() if now is None else now
        with Session(self._engine) as session:
            result = session.exec(delete(RevokedTokenRow).where(RevokedTokenRow.expires_at < now))
            session.commit()
            return result.rowcount
