"""Groups and memberships in SQL (SQLite or PostgreSQL), behind a store that speaks plain values.

Invariants:
- The tables never leave this module: callers get frozen ``GroupInfo`` values.
- A group's name is unique ignoring case and look-alike characters: the unique
  index is on ``name_key`` (see validation.name_key), so two racing creates
  cannot both win. Keys depend on ICU's data; name_keys.py recomputes them.
- An account is in a group at most once: (group_id, account_id) is the primary
  key, so racing joins cannot duplicate a row; the loser is "already a member".
- The owner joins in the same transaction that creates the group; owners may
  leave later, and a group with no members stays in the directory.
- ``member_count`` always comes from one grouped query per call, never one per group.
- Limits are checked before the insert. On PostgreSQL the group row is locked
  first, so members per group is exact; on SQLite (and for groups per account
  everywhere) a burst of simultaneous joins can overshoot by the few that raced.
  The limits guard against abuse, not billing, so that is accepted.
- "Ordered by name" means by ``sort_key`` (the name case folded, NFKC: not the
  look-alike ``name_key``, under which "Movies" would sort as "rnovles" and
  "1" as "l"), then id, in code-point order on both backends, so the directory
  reads the same whatever the PostgreSQL server's locale.
- Pages are keyset pages: the directory continues after a (sort_key, id)
  pair, member lists after a (joined_at, account_id) pair, so a page never
  repeats or skips an entry that stayed put while someone paged, however deep.
- Every membership change (create's owner, a join, a leave) is numbered in
  its own transaction: ``membership_changes`` holds each (group, account)
  pair's newest change, left ones included, under a fresh id from the
  table's sequence (PostgreSQL BIGSERIAL; SQLite AUTOINCREMENT, never
  reused). The id is drawn after the group's row lock is taken (SQLite:
  inside its single writer), so among one group's changes, and so among one
  pair's, a higher id was committed later, whichever replica of this service
  made it. Brokers and gateways apply a change only if it is newer than what
  they hold for the pair, so any delivery order ends in the committed state.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import BigInteger, DateTime, Integer, UniqueConstraint, and_, case, delete, func, or_, tuple_
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel, select

from chorus.common.db import translate_database_errors
from chorus.common.migrations import Schema, upgrade
from chorus.common.ids import new_id
from chorus.membership.errors import (
    GroupFull,
    GroupNameTaken,
    GroupNotFound,
    InvalidInput,
    StorageUnavailable,
    TooManyGroups,
)
from chorus.membership.validation import (
    DEFAULT_MAX_GROUPS_PER_ACCOUNT,
    DEFAULT_MAX_MEMBERS_PER_GROUP,
    MAX_GROUP_NAME_CHARS,
    MAX_ID_CHARS,
    check_id,
    group_name,
    name_key,
    search_query,
    sort_key,
)

__all__ = ["GroupInfo", "DirectoryPage", "LastChange", "MemberPage", "MembershipStore", "SCHEMA", "migrate"]

_log = logging.getLogger(__name__)


class GroupRow(SQLModel, table=True):
    __tablename__ = "chat_groups"

    id: str = Field(primary_key=True, max_length=MAX_ID_CHARS)
    name: str = Field(max_length=MAX_GROUP_NAME_CHARS)
    name_key: str = Field(unique=True)  # no max_length: casefold() may lengthen ("ß" -> "ss")
    sort_key: str = Field(index=True)  # the order of the directory and of an account's groups
    owner_id: str = Field(max_length=MAX_ID_CHARS)
    created_at: datetime = Field(sa_type=DateTime(timezone=True))


class MembershipRow(SQLModel, table=True):
    __tablename__ = "group_members"

    # The primary key's leading column also serves lookups by group.
    group_id: str = Field(
        foreign_key="chat_groups.id", primary_key=True, ondelete="CASCADE", max_length=MAX_ID_CHARS
    )
    account_id: str = Field(primary_key=True, index=True, max_length=MAX_ID_CHARS)
    joined_at: datetime = Field(sa_type=DateTime(timezone=True))


class ChangeRow(SQLModel, table=True):
    """The newest change of one (group, account) pair, numbered in commit order (module doc)."""

    __tablename__ = "membership_changes"
    __table_args__ = (UniqueConstraint("group_id", "account_id"), {"sqlite_autoincrement": True})

    # BIGINT on PostgreSQL; SQLite autoincrements only an INTEGER primary key (64-bit there anyway).
    id: int | None = Field(default=None, primary_key=True,
                           sa_type=BigInteger().with_variant(Integer(), "sqlite"))
    group_id: str = Field(foreign_key="chat_groups.id", ondelete="CASCADE", max_length=MAX_ID_CHARS)
    account_id: str = Field(max_length=MAX_ID_CHARS)
    joined: bool


SCHEMA = Schema("membership", [GroupRow.__table__, MembershipRow.__table__, ChangeRow.__table__])


def migrate(engine: Engine) -> None:
    """Bring the membership tables to the current schema (Alembic, chorus.membership.migrations)."""
    upgrade(engine, SCHEMA)


@dataclass(frozen=True, slots=True)
class GroupInfo:
    id: str
    name: str
    owner_id: str
    member_count: int


@dataclass(frozen=True, slots=True)
class LastChange:
    """A pair's newest committed change: what a broker's membership snapshot is made of."""

    group_id: str
    account_id: str
    joined: bool
    change_id: int


@dataclass(frozen=True, slots=True)
class DirectoryPage:
    entries: list[tuple[GroupInfo, bool]]  # each group with whether the viewer has joined it
    next_after: tuple[str, str] | None     # (sort_key, id) to continue after; None on the last page


@dataclass(frozen=True, slots=True)
class MemberPage:
    account_ids: list[str]
    next_after: tuple[datetime, str] | None  # (joined_at, account_id) to continue after; None: last page


_database_errors = translate_database_errors(
    StorageUnavailable, "the membership database is unavailable; try again", _log)


def _now() -> datetime:
    return datetime.now(timezone.utc)


_HEAD = (GroupRow.id, GroupRow.name, GroupRow.owner_id)  # what GroupInfo needs besides the count


class MembershipStore:
    """Every membership operation, each in its own transaction; safe to share between threads."""

    def __init__(
        self,
        engine: Engine,
        *,
        max_members_per_group: int = DEFAULT_MAX_MEMBERS_PER_GROUP,
        max_groups_per_account: int = DEFAULT_MAX_GROUPS_PER_ACCOUNT,
    ) -> None:
        if max_members_per_group < 1 or max_groups_per_account < 1:
            raise ValueError("membership limits must be >= 1 (the owner has to fit in the group)")
        self._engine = engine
        self._max_members_per_group = max_members_per_group
        self._max_groups_per_account = max_groups_per_account
        is_postgres = engine.dialect.name == "postgresql"
        self._sort_key = GroupRow.sort_key.collate("C") if is_postgres else GroupRow.sort_key

    @_database_errors
    def create_group(self, owner_id: str, name: str) -> tuple[GroupInfo, int]:
        """A new group named ``name`` with ``owner_id`` as its first member; with the number of
        the owner's join."""
        owner_id = check_id(owner_id, field="owner_id")
        name = group_name(name)
        key = name_key(name)
        group_id, now = new_id("g"), _now()
        with Session(self._engine) as session:
            self._check_account_room(session, owner_id)
            try:
                session.add(GroupRow(id=group_id, name=name, name_key=key, sort_key=sort_key(name),
                                     owner_id=owner_id, created_at=now))
                session.flush()  # the group row must exist before the membership that points at it
                session.add(MembershipRow(group_id=group_id, account_id=owner_id, joined_at=now))
                change_id = _number_change(session, group_id, owner_id, joined=True)
                session.commit()
            except IntegrityError:
                session.rollback()
                taken = session.exec(select(GroupRow.name).where(GroupRow.name_key == key)).first()
                if taken is not None:
                    raise GroupNameTaken(name, taken) from None
                raise
        return GroupInfo(id=group_id, name=name, owner_id=owner_id, member_count=1), change_id

    @_database_errors
    def join(self, group_id: str, account_id: str) -> tuple[GroupInfo, int | None]:
        """Add ``account_id`` to the group; with the change's number, or None when it was
        already a member (nothing changed)."""
        group_id = check_id(group_id, field="group_id")
        account_id = check_id(account_id, field="account_id")
        with Session(self._engine) as session:
            head = self._head(session, group_id, lock=True)
            change_id = None
            if not self._is_member(session, group_id, account_id):
                self._check_group_room(session, group_id)
                self._check_account_room(session, account_id)
                session.add(MembershipRow(group_id=group_id, account_id=account_id, joined_at=_now()))
                try:
                    change_id = _number_change(session, group_id, account_id, joined=True)
                    session.commit()
                except IntegrityError:
                    # A simultaneous join of the same account won the primary key: already a member.
                    session.rollback()
                    change_id = None
            return self._info(session, head), change_id

    @_database_errors
    def leave(self, group_id: str, account_id: str) -> tuple[GroupInfo, int | None]:
        """Remove ``account_id`` from the group; with the change's number, or None when it was
        not a member (nothing changed)."""
        group_id = check_id(group_id, field="group_id")
        account_id = check_id(account_id, field="account_id")
        with Session(self._engine) as session:
            head = self._head(session, group_id, lock=True)
            result = session.exec(
                delete(MembershipRow).where(
                    MembershipRow.group_id == group_id, MembershipRow.account_id == account_id
                )
            )
            change_id = _number_change(session, group_id, account_id, joined=False) if result.rowcount else None
            session.commit()
            return self._info(session, head), change_id

    @_database_errors
    def get_group(self, group_id: str) -> GroupInfo:
        group_id = check_id(group_id, field="group_id")
        with Session(self._engine) as session:
            head = self._head(session, group_id, lock=False)
            return self._info(session, head)

    @_database_errors
    def groups_of(self, account_id: str) -> list[GroupInfo]:
        """The groups ``account_id`` belongs to, ordered by name (empty for an unknown account)."""
        account_id = check_id(account_id, field="account_id")
        with Session(self._engine) as session:
            heads = session.exec(
                select(*_HEAD)
                .join(MembershipRow, MembershipRow.group_id == GroupRow.id)
                .where(MembershipRow.account_id == account_id)
                .order_by(self._sort_key, GroupRow.id)
            ).all()
            return [info for info, _ in self._summaries(session, heads, viewer=None)]

    @_database_errors
    def members_of(self, group_id: str) -> list[str]:
        """The account ids in the group, in the order they joined."""
        group_id = check_id(group_id, field="group_id")
        with Session(self._engine) as session:
            self._head(session, group_id, lock=False)
            return list(
                session.exec(
                    select(MembershipRow.account_id)
                    .where(MembershipRow.group_id == group_id)
                    .order_by(MembershipRow.joined_at, MembershipRow.account_id)
                ).all()
            )

    @_database_errors
    def last_changes_page(self, after: tuple[str, str] | None, limit: int) -> list[LastChange]:
        """Every pair's newest change (left ones too), a page at a time in (group_id,
        account_id) order after ``after`` (None: from the start): what the broker's membership
        snapshot is read from. Pages may be read at different moments: each entry is true as of
        its own number, which is all a broker needs to merge it (module doc)."""
        query = select(ChangeRow.group_id, ChangeRow.account_id, ChangeRow.joined, ChangeRow.id)
        if after is not None:
            query = query.where(tuple_(ChangeRow.group_id, ChangeRow.account_id) > after)
        query = query.order_by(ChangeRow.group_id, ChangeRow.account_id).limit(limit)
        with Session(self._engine) as session:
            return [LastChange(*row) for row in session.exec(query).all()]

    @_database_errors
    def member_page(self, group_id: str, limit: int,
                    after: tuple[datetime, str] | None = None) -> MemberPage:
        """Up to ``limit`` account ids of the group in the order they joined, after ``after``."""
        group_id = check_id(group_id, field="group_id")
        if limit < 1:
            raise InvalidInput(f"limit must be >= 1, got {limit}")
        query = (select(MembershipRow.account_id, MembershipRow.joined_at)
                 .where(MembershipRow.group_id == group_id)
                 .order_by(MembershipRow.joined_at, MembershipRow.account_id).limit(limit + 1))
        if after is not None:
            joined_at, account_id = after
            query = query.where(or_(MembershipRow.joined_at > joined_at,
                                    and_(MembershipRow.joined_at == joined_at, MembershipRow.account_id > account_id)))
        with Session(self._engine) as session:
            self._head(session, group_id, lock=False)
            rows = session.exec(query).all()
        more, rows = len(rows) > limit, rows[:limit]
        return MemberPage([row.account_id for row in rows],
                          (rows[-1].joined_at, rows[-1].account_id) if more else None)

    @_database_errors
    def is_member(self, group_id: str, account_id: str) -> bool:
        """Whether ``account_id`` is in the group; GroupNotFound for an unknown group."""
        group_id = check_id(group_id, field="group_id")
        account_id = check_id(account_id, field="account_id")
        with Session(self._engine) as session:
            self._head(session, group_id, lock=False)
            return self._is_member(session, group_id, account_id)

    def directory(self, account_id: str | None, limit: int) -> list[tuple[GroupInfo, bool]]:
        """The first page of ``directory_page``'s entries."""
        return self.directory_page(account_id, limit).entries

    @_database_errors
    def directory_page(self, account_id: str | None, limit: int, *, query: str = "",
                       after: tuple[str, str] | None = None) -> DirectoryPage:
        """Up to ``limit`` groups ordered by name after ``after`` (a page's ``next_after``), each
        with whether ``account_id`` has joined it (always False when ``account_id`` is None). With
        ``query``, only the groups whose name key contains the query's (case, look-alikes ignored)."""
        if account_id is not None:
            account_id = check_id(account_id, field="account_id")
        if limit < 1:
            raise InvalidInput(f"limit must be >= 1, got {limit}")
        statement = (select(*_HEAD, GroupRow.sort_key).order_by(self._sort_key, GroupRow.id).limit(limit + 1))
        if after is not None:
            after_sort_key, after_id = after
            statement = statement.where(or_(self._sort_key > after_sort_key,
                                            and_(GroupRow.sort_key == after_sort_key, GroupRow.id > after_id)))
        if query := search_query(query):
            statement = statement.where(GroupRow.name_key.contains(name_key(query), autoescape=True))
        with Session(self._engine) as session:
            rows = session.exec(statement).all()
            more, rows = len(rows) > limit, rows[:limit]
            return DirectoryPage(self._summaries(session, rows, viewer=account_id),
                                 (rows[-1].sort_key, rows[-1].id) if more else None)

    def _head(self, session: Session, group_id: str, *, lock: bool):
        """The group's (id, name, owner_id); with ``lock``, held until the transaction ends
        (PostgreSQL; SQLite has no row locks and serialises writers anyway)."""
        query = select(*_HEAD).where(GroupRow.id == group_id)
        if lock:
            query = query.with_for_update(key_share=True)  # FOR NO KEY UPDATE: FK checks still pass
        head = session.exec(query).first()
        if head is None:
            raise GroupNotFound(group_id)
        return head

    def _info(self, session: Session, head) -> GroupInfo:
        return self._summaries(session, [head], viewer=None)[0][0]

    def _summaries(
        self, session: Session, heads: Sequence, *, viewer: str | None
    ) -> list[tuple[GroupInfo, bool]]:
        """``heads`` as GroupInfo in the same order, each with whether ``viewer`` is a member;
        counts and flags come from a single grouped query."""
        if not heads:
            return []
        columns = [MembershipRow.group_id, func.count()]
        if viewer is not None:
            columns.append(func.max(case((MembershipRow.account_id == viewer, 1), else_=0)))
        rows = session.exec(
            select(*columns)
            .where(MembershipRow.group_id.in_([head.id for head in heads]))
            .group_by(MembershipRow.group_id)
        ).all()
        counts = {row[0]: row[1] for row in rows}
        joined = {row[0] for row in rows if viewer is not None and row[2]}
        return [
            (GroupInfo(head.id, head.name, head.owner_id, counts.get(head.id, 0)), head.id in joined)
            for head in heads
        ]

    def _is_member(self, session: Session, group_id: str, account_id: str) -> bool:
        return session.get(MembershipRow, (group_id, account_id)) is not None

    def _check_group_room(self, session: Session, group_id: str) -> None:
        count = session.exec(
            select(func.count()).select_from(MembershipRow).where(MembershipRow.group_id == group_id)
        ).one()
        if count >= self._max_members_per_group:
            raise GroupFull(self._max_members_per_group)

    def _check_account_room(self, session: Session, account_id: str) -> None:
        count = session.exec(
            select(func.count()).select_from(MembershipRow).where(MembershipRow.account_id == account_id)
        ).one()
        if count >= self._max_groups_per_account:
            raise TooManyGroups(self._max_groups_per_account)


def _number_change(session: Session, group_id: str, account_id: str, *, joined: bool) -> int:
    """Record a change of the pair as its newest, under a new number (see the module doc:
    the caller holds the group's row lock, or is creating the group)."""
    session.exec(delete(ChangeRow).where(ChangeRow.group_id == group_id, ChangeRow.account_id == account_id))
    row = ChangeRow(group_id=group_id, account_id=account_id, joined=joined)
    session.add(row)
    session.flush()
    return row.id
