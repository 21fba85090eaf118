"""Accounts and revoked tokens in SQL (SQLite or PostgreSQL), behind a store that speaks plain values.

Invariants:
- The tables never leave this module: callers get frozen ``AccountRecord`` values.
- Usernames are unique ignoring case: the unique index is on ``username_key``,
  so two racing registrations cannot both win.
- Only password hashes are stored. A revoked token is kept until it would have
  expired anyway (``purge_expired_revocations``), then forgotten.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone

from sqlalchemy import delete
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel, select

from chorus.auth.errors import StorageUnavailable, UsernameTaken
from chorus.auth.validation import username_key
from chorus.common.db import translate_database_errors
from chorus.common.migrations import Schema, upgrade
from chorus.common.ids import new_id

__all__ = ["AccountRecord", "AuthStore", "SCHEMA", "migrate"]

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


SCHEMA = Schema("auth", [AccountRow.__table__, RevokedTokenRow.__table__])


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
    def revoke(self, token_id: str, expires_at: int) -> None:
        """Revoke a token; revoking twice is not an error."""
        with Session(self._engine) as session:
            if session.get(RevokedTokenRow, token_id) is None:
                session.add(RevokedTokenRow(jti=token_id, expires_at=expires_at))
                try:
                    session.commit()
                except IntegrityError:
                    pass  # revoked concurrently: the outcome is the same

    @_database_errors
    def is_revoked(self, token_id: str) -> bool:
        with Session(self._engine) as session:
            return session.get(RevokedTokenRow, token_id) is not None

    @_database_errors
    def purge_expired_revocations(self, now: float | None = None) -> int:
        now = time.time() if now is None else now
        with Session(self._engine) as session:
            result = session.exec(delete(RevokedTokenRow).where(RevokedTokenRow.expires_at < now))
            session.commit()
            return result.rowcount
