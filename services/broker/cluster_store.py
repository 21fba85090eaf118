"""Brokers' leases and groups' owners in the shared database: the cluster's only coordinator.

Liveness. Each broker keeps a row in ``broker_nodes`` whose lease it renews
every heartbeat (database time, so brokers' clocks do not matter). On
PostgreSQL it also holds a session advisory lock named after its node for as
long as it runs: PostgreSQL releases it the moment the broker's connection
drops (a kill -9, a crash), so the others see a dead broker at their next
heartbeat instead of when its lease runs out. A live node is one whose lease
is ahead and (on PostgreSQL) whose lock is held. A paused broker (SIGSTOP)
keeps its lock and connection, so it is only declared dead when its lease
expires: fencing (storage.append_batch's fence) is what keeps it harmless
when it wakes up.

Ownership. ``broker_group_owners`` has one row per group: node, incarnation,
epoch and the group's last stored seq. ``claim`` takes a group, in one
transaction with the row locked, when it has no owner, a released one, a
dead one, or this node's own previous incarnation; the epoch then grows by
one. A live owner is left alone and named, so the caller answers MOVED.

Every database failure surfaces as StoreUnavailable, as in storage.py.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Iterable

from sqlalchemy import func, insert, literal_column, select, text, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from chorus.common.db import translate_database_errors
from chorus.wire.cluster import Node

from .errors import StoreUnavailable
from .records import Claimed, HeldBy
from .storage import MESSAGES, NODES, OWNERS

__all__ = ["ClusterStore", "Claimed", "HeldBy"]

log = logging.getLogger(__name__)

_LOCK_CLASS = 0x43686F72  # "Chor": our advisory locks' key space (classid), apart from migrations'

_database_errors = translate_database_errors(
    StoreUnavailable, "the cluster tables are unavailable; try again", log, also=(IntegrityError,))


def _lock_key(namespace: str, node: str) -> int:
    """The node's advisory lock key; locks are database-wide, so the schema is part of it (two
    clusters in two schemas of one database never see each other's brokers)."""
    return zlib.crc32(f"{namespace}\0{node}".encode()) & 0x7FFFFFFF


class ClusterStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._postgres = engine.dialect.name == "postgresql"
        self._lock_connection: Connection | None = None  # PostgreSQL: holds our advisory lock
        self._namespace: str | None = None  # PostgreSQL: the schema our tables are in

    def _key(self, conn: Connection, node: str) -> int:
        if self._namespace is None:
            self._namespace = conn.execute(text("SELECT current_schema()")).scalar() or ""
        return _lock_key(self._namespace, node)

    def _now_ms(self):
        """The database's clock in milliseconds, as SQL."""
        if self._postgres:
            return literal_column("(extract(epoch from clock_timestamp()) * 1000)::bigint")
        return literal_column("CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)")

    # liveness -------------------------------------------------------------------

    @_database_errors
    def heartbeat(self, me: Node, incarnation: str, lease_ms: int) -> list[Node]:
        """Renew our lease (making our row if needed); the live nodes, us included."""
        self._hold_lock(me.name)
        values = {"incarnation": incarnation, "router_endpoint": me.router, "pub_endpoint": me.pub,
                  "grpc_address": me.grpc}
        with self._engine.begin() as conn:
            renewed = conn.execute(update(NODES).where(NODES.c.node == me.name)
                                   .values(**values, lease_expires_ms=self._now_ms() + lease_ms)).rowcount
            if not renewed:
                conn.execute(insert(NODES).values(node=me.name, **values,
                                                  lease_expires_ms=self._now_ms() + lease_ms))
            return self._live(conn)

    def _live(self, conn: Connection) -> list[Node]:
        rows = conn.execute(select(NODES).where(NODES.c.lease_expires_ms > self._now_ms())).all()
        locked = self._locked_nodes(conn) if self._postgres else None
        return [Node(r.node, r.router_endpoint, r.pub_endpoint, r.grpc_address, r.incarnation) for r in rows
                if locked is None or self._key(conn, r.node) in locked]

    def _locked_nodes(self, conn: Connection) -> set[int]:
        rows = conn.execute(text("SELECT objid FROM pg_locks WHERE locktype = 'advisory' AND granted "
                                 "AND classid = :cls"), {"cls": _LOCK_CLASS}).all()
        return {int(row.objid) for row in rows}

    def _hold_lock(self, node: str) -> None:
        """PostgreSQL: hold our node's session advisory lock on a connection of its own."""
        if not self._postgres:
            return
        if self._lock_connection is not None:
            try:
                self._lock_connection.execute(text("SELECT 1"))
                return
            except Exception:  # the connection (and so the lock) is gone: take it again
                self._drop_lock()
        conn = self._engine.connect()
        conn.detach()  # never back to the pool: closing it must end the session, and the lock
        got = conn.execute(text("SELECT pg_try_advisory_lock(:cls, :key)"),
                           {"cls": _LOCK_CLASS, "key": self._key(conn, node)}).scalar()
        conn.commit()
        if not got:
            conn.close()
            raise StoreUnavailable(f"another broker named {node!r} is running; waiting for it to stop")
        self._lock_connection = conn

    def _drop_lock(self) -> None:
        if self._lock_connection is not None:
            try:
                self._lock_connection.close()
            finally:
                self._lock_connection = None

    @_database_errors
    def leave(self, node: str, incarnation: str) -> None:
        """A graceful stop: release every group we own and give up our lease at once."""
        with self._engine.begin() as conn:
            conn.execute(update(OWNERS).where(OWNERS.c.node == node, OWNERS.c.incarnation == incarnation)
                         .values(node=None, incarnation=None))
            conn.execute(NODES.delete().where(NODES.c.node == node, NODES.c.incarnation == incarnation))
        self._drop_lock()

    # ownership ------------------------------------------------------------------

    @_database_errors
    def claim(self, groups: Iterable[str], node: str, incarnation: str) -> dict[str, Claimed | HeldBy]:
        """Take each group that is free, released, dead-owned or our previous incarnation's."""
        wanted = sorted(set(groups))  # a fixed lock order: two brokers never deadlock on rows
        if not wanted:
            return {}
        with self._engine.begin() as conn:
            live = {n.name for n in self._live(conn)}
            live_incarnations = dict(conn.execute(select(NODES.c.node, NODES.c.incarnation)
                                                  .where(NODES.c.node.in_(live))).all())
            query = select(OWNERS).where(OWNERS.c.group_id.in_(wanted))
            if self._postgres:
                query = query.with_for_update()
            rows = {row.group_id: row for row in conn.execute(query)}
            missing = [g for g in wanted if g not in rows]
            seqs = self._max_seqs(conn, missing)
            result: dict[str, Claimed | HeldBy] = {}
            for group in missing:
                conn.execute(insert(OWNERS).values(group_id=group, node=node, incarnation=incarnation,
                                                   epoch=1, last_seq=seqs.get(group, 0)))
                result[group] = Claimed(1, seqs.get(group, 0))
            for group, row in rows.items():
                owner_live = (row.node is not None and row.node in live
                              and live_incarnations.get(row.node) == row.incarnation)
                if row.node == node and row.incarnation == incarnation:
                    result[group] = Claimed(row.epoch, row.last_seq)
                elif owner_live and row.node != node:
                    result[group] = HeldBy(row.node)
                else:
                    conn.execute(update(OWNERS).where(OWNERS.c.group_id == group)
                                 .values(node=node, incarnation=incarnation, epoch=row.epoch + 1))
                    result[group] = Claimed(row.epoch + 1, row.last_seq)
            return result

    def _max_seqs(self, conn: Connection, groups: list[str]) -> dict[str, int]:
        """Groups with no owner row yet may have messages from before the cluster tables."""
        if not groups:
            return {}
        return dict(conn.execute(select(MESSAGES.c.group_id, func.max(MESSAGES.c.seq))
                                 .where(MESSAGES.c.group_id.in_(groups)).group_by(MESSAGES.c.group_id)).all())

    @_database_errors
    def release(self, groups: Iterable[str], node: str, incarnation: str) -> None:
        """Let go of groups (another node now wins them): their next claim needs no waiting."""
        wanted = list(groups)
        if not wanted:
            return
        with self._engine.begin() as conn:
            conn.execute(update(OWNERS).where(OWNERS.c.group_id.in_(wanted), OWNERS.c.node == node,
                                              OWNERS.c.incarnation == incarnation)
                         .values(node=None, incarnation=None))

    @_database_errors
    def last_seqs(self, groups: Iterable[str]) -> dict[str, int]:
        """The owner rows' last seqs (0 for a group without one)."""
        wanted = list(dict.fromkeys(groups))
        if not wanted:
            return {}
        with self._engine.connect() as conn:
            found = dict(conn.execute(select(OWNERS.c.group_id, OWNERS.c.last_seq)
                                      .where(OWNERS.c.group_id.in_(wanted))).all())
        return {g: found.get(g, 0) for g in wanted}

    def close(self) -> None:
        self._drop_lock()
