"""Stored messages and read markers in SQL (SQLite or PostgreSQL), behind a store of plain values.

Invariants:
- The tables never leave this module: callers get frozen ``StoredMessage`` values.
- (group_id, seq) is the primary key, so a seq is stored at most once per group;
  the broker loop is the only writer and hands out seqs gap-free (see posting.py).
- ``append_batch`` is ONE transaction for many messages (group commit): either
  every message of the batch is stored or none is. It returns only after the
  commit, and the broker acks nothing before it returns.
- A read marker never moves backwards: ``mark_read`` is an upsert that keeps the
  larger seq, atomically in the database (no read-then-write race).
- Every database failure surfaces as ``StoreUnavailable``; SQL and driver text
  go to the log, never to callers.

Durability. An ack means the message survives a crash of any process:
- PostgreSQL: a commit returns after the WAL is flushed (synchronous_commit=on,
  the server default), which also survives power loss.
- SQLite (the embedded default) runs in WAL mode with synchronous=NORMAL
  (chorus.common.db): a committed transaction is in the WAL file, so it survives
  a crash (even kill -9) of the broker process, but the WAL is not fsynced on
  each commit, so a power loss or kernel crash may lose the last transactions.
  ``use_full_sync`` (the broker's --durable-sync flag) switches SQLite to
  synchronous=FULL: an fsync per commit, i.e. per batch, not per message.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

from sqlalchemy import BigInteger, Text, delete, event, func, insert, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, SQLModel, select

from chorus.common.db import translate_database_errors
from chorus.common.migrations import Schema, upgrade
from chorus.wire.limits import MAX_ID_CHARS, MAX_IDEMPOTENCY_KEY_CHARS

from .errors import StoreUnavailable
from .ownership import Fence
from .records import Fenced, SentKey, StoredMessage

__all__ = ["StoredMessage", "SentKey", "MessageStore", "SCHEMA", "MESSAGES", "NODES", "OWNERS", "Fenced", "migrate",
           "use_full_sync"]

_log = logging.getLogger(__name__)

MAX_NAME_CHARS = 256
MAX_SENDER_KEY_CHARS = 128  # an account id, or "system:" + a sender name
MAX_ENDPOINT_CHARS = 256


class MessageRow(SQLModel, table=True):
    __tablename__ = "broker_messages"

    group_id: str = Field(primary_key=True, max_length=MAX_ID_CHARS)
    seq: int = Field(primary_key=True, sa_type=BigInteger, sa_column_kwargs={"autoincrement": False})
    ts_ms: int = Field(sa_type=BigInteger)
    sender_id: str = Field(max_length=MAX_ID_CHARS)
    sender_username: str = Field(max_length=MAX_NAME_CHARS)
    sender_display_name: str = Field(max_length=MAX_NAME_CHARS)
    text: str = Field(sa_type=Text)


class ReadMarkerRow(SQLModel, table=True):
    __tablename__ = "broker_read_markers"

    account_id: str = Field(primary_key=True, max_length=MAX_ID_CHARS)
    group_id: str = Field(primary_key=True, max_length=MAX_ID_CHARS)
    seq: int = Field(sa_type=BigInteger)


class SentKeyRow(SQLModel, table=True):
    """Idempotency keys of stored posts, kept for the retention (see posting.py)."""

    __tablename__ = "broker_sent_keys"

    sender_key: str = Field(primary_key=True, max_length=MAX_SENDER_KEY_CHARS)
    idempotency_key: str = Field(primary_key=True, max_length=MAX_IDEMPOTENCY_KEY_CHARS)
    group_id: str = Field(max_length=MAX_ID_CHARS)
    seq: int = Field(sa_type=BigInteger)
    ts_ms: int = Field(sa_type=BigInteger, index=True)  # the purge deletes by age


class NodeRow(SQLModel, table=True):
    """A broker of the cluster and its lease (cluster_store.py): live while lease_expires_ms is ahead."""

    __tablename__ = "broker_nodes"

    node: str = Field(primary_key=True, max_length=MAX_ID_CHARS)
    incarnation: str = Field(max_length=MAX_ID_CHARS)
    router_endpoint: str = Field(max_length=MAX_ENDPOINT_CHARS)
    pub_endpoint: str = Field(max_length=MAX_ENDPOINT_CHARS)
    grpc_address: str = Field(max_length=MAX_ENDPOINT_CHARS)
    lease_expires_ms: int = Field(sa_type=BigInteger)


class GroupOwnerRow(SQLModel, table=True):
    """Who owns a group, under which epoch (the fencing token), and its last stored seq."""

    __tablename__ = "broker_group_owners"

    group_id: str = Field(primary_key=True, max_length=MAX_ID_CHARS)
    node: str | None = Field(default=None, max_length=MAX_ID_CHARS)  # None: released
    incarnation: str | None = Field(default=None, max_length=MAX_ID_CHARS)
    epoch: int = Field(sa_type=BigInteger)
    last_seq: int = Field(sa_type=BigInteger)


_MESSAGES = MessageRow.__table__
_MARKERS = ReadMarkerRow.__table__
_KEYS = SentKeyRow.__table__
NODES = NodeRow.__table__
OWNERS = GroupOwnerRow.__table__
MESSAGES = _MESSAGES


SCHEMA = Schema("broker", [_MESSAGES, _MARKERS, _KEYS, NODES, OWNERS])


def migrate(engine: Engine) -> None:
    """Bring the broker's tables to the current schema (Alembic, chorus.broker.migrations)."""
    upgrade(engine, SCHEMA)


def use_full_sync(engine: Engine) -> None:
    """SQLite only: fsync every commit (synchronous=FULL), surviving power loss; no-op otherwise.

    Registered after chorus.common.db's tuning listener, so it runs later and wins.
    """
    if engine.dialect.name != "sqlite":
        return

    def _full(dbapi_connection, _record) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.close()

    event.listen(engine, "connect", _full)


# IntegrityError too: a seq already taken means our counters are stale (another
# writer, or a commit reported failed that did land); retryable after a reload.
_database_errors = translate_database_errors(
    StoreUnavailable, "the message store is unavailable; try again", _log, also=(IntegrityError,))


def _check_fence(conn, fence: Fence, messages: Sequence[StoredMessage]) -> None:
    """Advance each group's owner row to the batch's last seq where the fence still holds."""
    last: dict[str, int] = {}
    for m in messages:
        last[m.group_id] = max(m.seq, last.get(m.group_id, 0))
    lost = []
    for group, seq in last.items():
        moved = conn.execute(
            update(OWNERS).where(OWNERS.c.group_id == group, OWNERS.c.node == fence.node,
                                 OWNERS.c.incarnation == fence.incarnation,
                                 OWNERS.c.epoch == fence.epochs.get(group, -1))
            .values(last_seq=seq))
        if moved.rowcount != 1:
            lost.append(group)
    if lost:
        raise Fenced(lost)


def _message(row) -> StoredMessage:
    return StoredMessage(row.group_id, row.seq, row.ts_ms, row.sender_id, row.sender_username,
                         row.sender_display_name, row.text)


class MessageStore:
    """Messages and read markers; each call is its own transaction. Safe to share between threads."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._dialect_insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert

    @_database_errors
    def last_seqs(self, group_ids: Iterable[str]) -> dict[str, int]:
        """The highest stored seq of each group (0 when it has none), in one query."""
        wanted = list(dict.fromkeys(group_ids))
        if not wanted:
            return {}
        query = (select(_MESSAGES.c.group_id, func.max(_MESSAGES.c.seq))
                 .where(_MESSAGES.c.group_id.in_(wanted)).group_by(_MESSAGES.c.group_id))
        with self._engine.connect() as conn:
            found = {group: seq for group, seq in conn.execute(query)}
        return {group: found.get(group, 0) for group in wanted}

    @_database_errors
    def append_batch(self, messages: Sequence[StoredMessage], keys: Sequence[SentKey] = (),
                     fence: Fence | None = None) -> None:
        """Store every message and key in one transaction (the group commit); all or nothing.

        With ``fence``, the same transaction first moves each group's owner row to the batch's
        last seq, but only where the row still names the fence's node, incarnation and epoch;
        if any group's row does not, nothing is stored and ``Fenced`` names those groups.
        """
        if not messages and not keys:
            return
        rows = [
            {"group_id": m.group_id, "seq": m.seq, "ts_ms": m.ts_ms, "sender_id": m.sender_id,
             "sender_username": m.sender_username, "sender_display_name": m.sender_display_name,
             "text": m.text}
            for m in messages
        ]
        with self._engine.begin() as conn:
            if fence is not None:
                _check_fence(conn, fence, messages)
            if rows:
                conn.execute(insert(_MESSAGES), rows)
            if keys:
                conn.execute(insert(_KEYS), [
                    {"sender_key": k.sender_key, "idempotency_key": k.idempotency_key, "group_id": k.group_id,
                     "seq": k.seq, "ts_ms": k.ts_ms} for k in keys])

    @_database_errors
    def find_keys(self, wanted: Iterable[tuple[str, str]]) -> dict[tuple[str, str], SentKey]:
        """The stored keys among (sender_key, idempotency_key) pairs, in one query."""
        pairs = list(dict.fromkeys(wanted))
        if not pairs:
            return {}
        query = select(_KEYS).where(tuple_(_KEYS.c.sender_key, _KEYS.c.idempotency_key).in_(pairs))
        with self._engine.connect() as conn:
            return {(row.sender_key, row.idempotency_key): SentKey(row.sender_key, row.idempotency_key,
                                                                   row.group_id, row.seq, row.ts_ms)
                    for row in conn.execute(query)}

    @_database_errors
    def forget_keys_before(self, ts_ms: int) -> int:
        """Drop the keys of messages stored before ``ts_ms``; how many were dropped."""
        with self._engine.begin() as conn:
            return conn.execute(delete(_KEYS).where(_KEYS.c.ts_ms < ts_ms)).rowcount

    @_database_errors
    def page(self, group_id: str, *, before_seq: int = 0, after_seq: int | None = None,
             limit: int) -> tuple[list[StoredMessage], bool]:
        """Up to ``limit`` messages and whether more exist beyond them.

        ``after_seq`` given (0 included): seqs above it, oldest first (resume). Otherwise seqs below
        ``before_seq`` (or the latest when it is 0), newest first.
        """
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")
        if before_seq and after_seq is not None:
            raise ValueError("give before_seq or after_seq, not both")
        query = select(_MESSAGES).where(_MESSAGES.c.group_id == group_id)
        if after_seq is not None:
            query = query.where(_MESSAGES.c.seq > after_seq).order_by(_MESSAGES.c.seq)
        else:
            if before_seq:
                query = query.where(_MESSAGES.c.seq < before_seq)
            query = query.order_by(_MESSAGES.c.seq.desc())
        with self._engine.connect() as conn:
            rows = conn.execute(query.limit(limit + 1)).all()
        return [_message(row) for row in rows[:limit]], len(rows) > limit

    @_database_errors
    def mark_read(self, account_id: str, group_id: str, seq: int) -> None:
        """Remember that ``account_id`` has read ``group_id`` up to ``seq``; never moves backwards."""
        statement = self._dialect_insert(_MARKERS).values(account_id=account_id, group_id=group_id, seq=seq)
        statement = statement.on_conflict_do_update(
            index_elements=[_MARKERS.c.account_id, _MARKERS.c.group_id],
            set_={"seq": statement.excluded.seq},
            where=_MARKERS.c.seq < statement.excluded.seq,
        )
        with self._engine.begin() as conn:
            conn.execute(statement)

    @_database_errors
    def read_seqs(self, account_id: str, group_ids: Iterable[str]) -> dict[str, int]:
        """The account's read marker in each group (0 when none), in one query."""
        wanted = list(dict.fromkeys(group_ids))
        if not wanted:
            return {}
        query = select(_MARKERS.c.group_id, _MARKERS.c.seq).where(
            _MARKERS.c.account_id == account_id, _MARKERS.c.group_id.in_(wanted))
        with self._engine.connect() as conn:
            found = {group: seq for group, seq in conn.execute(query)}
        return {group: found.get(group, 0) for group in wanted}
