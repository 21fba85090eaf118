"""The routing table: which accounts are in which group, for live sessions.

Invariants (kept by every method, checked by tests/broker/test_routing.py):
- A session belongs to exactly one gateway and one account.
- ``members_of(g)`` is exactly the accounts with at least one live session
  whose group set contains g; no group maps to an empty member set.
- A membership change (join/leave) applies to every live session of that
  account, on every gateway, so a person's tabs never disagree.
- ``drop_gateway`` leaves no trace of that gateway's sessions.

The table knows only accounts that are online; the membership service remains
the source of truth, and gateways send each session's full group list when
they register it. No sockets here: the ZeroMQ driver feeds it.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

__all__ = ["RoutingTable", "Session", "SessionKey"]

GatewayId = bytes
SessionKey = tuple[GatewayId, str]


@dataclass
class Session:
    gateway: GatewayId
    session_id: str
    account_id: str
    groups: set[str] = field(default_factory=set)
    profile: object = None  # opaque to the table: who the person is, for deliveries


class RoutingTable:
    def __init__(self) -> None:
        self._sessions: dict[SessionKey, Session] = {}
        self._by_account: dict[str, set[SessionKey]] = defaultdict(set)
        # group -> account -> number of that account's live sessions in the group
        self._members: dict[str, dict[str, int]] = defaultdict(dict)

    # sessions -------------------------------------------------------------

    def open_session(self, gateway: GatewayId, session_id: str, account_id: str, groups) -> Session:
        """Register a session with all its groups; re-opening replaces the old registration."""
        key = (gateway, session_id)
        if key in self._sessions:
            self.close_session(gateway, session_id)
        session = Session(gateway, session_id, account_id)
        self._sessions[key] = session
        self._by_account[account_id].add(key)
        for group in groups:
            self._add(session, group)
        return session

    def close_session(self, gateway: GatewayId, session_id: str) -> Session | None:
        session = self._sessions.pop((gateway, session_id), None)
        if session is None:
            return None
        for group in list(session.groups):
            self._remove(session, group)
        keys = self._by_account[session.account_id]
        keys.discard((gateway, session_id))
        if not keys:
            del self._by_account[session.account_id]
        return session

    def session(self, gateway: GatewayId, session_id: str) -> Session | None:
        return self._sessions.get((gateway, session_id))

    def drop_gateway(self, gateway: GatewayId) -> int:
        """Forget every session of a gateway (it died or restarted); returns how many."""
        keys = [key for key in self._sessions if key[0] == gateway]
        for _, session_id in keys:
            self.close_session(gateway, session_id)
        return len(keys)

    # membership -----------------------------------------------------------

    def join(self, account_id: str, group: str) -> int:
        """Add ``group`` to every live session of the account; returns sessions changed."""
        changed = 0
        for key in self._by_account.get(account_id, ()):
            session = self._sessions[key]
            if group not in session.groups:
                self._add(session, group)
                changed += 1
        return changed

    def leave(self, account_id: str, group: str) -> int:
        """Remove ``group`` from every live session of the account; returns sessions changed."""
        changed = 0
        for key in self._by_account.get(account_id, ()):
            session = self._sessions[key]
            if group in session.groups:
                self._remove(session, group)
                changed += 1
        return changed

    # queries --------------------------------------------------------------

    def members_of(self, group: str) -> frozenset[str]:
        return frozenset(self._members.get(group, ()))

    def is_member(self, account_id: str, group: str) -> bool:
        return account_id in self._members.get(group, ())

    def groups(self) -> frozenset[str]:
        return frozenset(self._members)

    def session_count(self) -> int:
        return len(self._sessions)

    # internals ------------------------------------------------------------

    def _add(self, session: Session, group: str) -> None:
        if group in session.groups:
            return
        session.groups.add(group)
        members = self._members[group]
        members[session.account_id] = members.get(session.account_id, 0) + 1

    def _remove(self, session: Session, group: str) -> None:
        session.groups.discard(group)
        members = self._members[group]
        count = members.get(session.account_id, 0) - 1
        if count > 0:
            members[session.account_id] = count
        else:
            members.pop(session.account_id, None)
            if not members:
                del self._members[group]
