"""Live WebSocket sessions of this gateway and which groups they receive.

Invariants:
- ``live(g)`` holds exactly the attached sessions whose ``groups`` contain g;
  the fan-out loop iterates it directly, so nothing here awaits.
- The SUB subscription to group g is wanted while ``_topic_refs[g] > 0``;
  ``acquire``/``release`` return the groups that crossed 0, so the caller
  subscribes or unsubscribes exactly once per group.
- A session that is closed or cut off never gets another byte.

Fan-out policy (``Session.push``): a frame is handed to the socket's transport
without awaiting; a session whose transport already holds more than
``max_send_buffer_bytes`` unsent is cut off (``on_overflow``, which closes it
with 1013 "slow consumer") instead of slowing everyone else; closed sessions
are skipped. No per-recipient encoding: the caller passes the same bytes to all.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable

__all__ = ["Session", "LocalSessions"]


class Session:
    __slots__ = ("id", "user", "groups", "transport", "closed", "_max_buffer", "_on_overflow")

    def __init__(self, session_id: str, user: dict, groups: dict[str, str], transport, *,
                 max_send_buffer_bytes: int, on_overflow: Callable[["Session"], None]) -> None:
        self.id = session_id
        self.user = user            # {"id", "username", "display_name"}
        self.groups = groups        # group id -> name, as the person sees them
        self.transport = transport  # an asyncio.Transport (or anything with the same 3 methods)
        self.closed = False
        self._max_buffer = max_send_buffer_bytes
        self._on_overflow = on_overflow

    @property
    def account_id(self) -> str:
        return self.user["id"]

    def push(self, frame: bytes) -> None:
        """Queue one complete WebSocket frame; never blocks."""
        if self.closed:
            return
        transport = self.transport
        if transport.is_closing():
            self.closed = True
            return
        if transport.get_write_buffer_size() > self._max_buffer:
            self.closed = True
            self._on_overflow(self)
            return
        transport.write(frame)


class LocalSessions:
    def __init__(self) -> None:
        self._live: dict[str, set[Session]] = defaultdict(set)
        self._by_account: dict[str, set[Session]] = defaultdict(set)
        self._topic_refs: dict[str, int] = {}

    # subscriptions ----------------------------------------------------------

    def acquire(self, groups: Iterable[str]) -> list[str]:
        """Count one more holder of each group; returns the groups to subscribe to now."""
        new = []
        for group in groups:
            count = self._topic_refs.get(group, 0)
            self._topic_refs[group] = count + 1
            if count == 0:
                new.append(group)
        return new

    def release(self, groups: Iterable[str]) -> list[str]:
        """Count one fewer holder of each group; returns the groups to unsubscribe from now."""
        gone = []
        for group in groups:
            count = self._topic_refs.get(group, 0) - 1
            if count > 0:
                self._topic_refs[group] = count
            else:
                self._topic_refs.pop(group, None)
                gone.append(group)
        return gone

    def subscribed(self) -> frozenset[str]:
        return frozenset(self._topic_refs)

    # delivery ---------------------------------------------------------------

    def attach(self, session: Session) -> None:
        """Start delivering the session's groups to it."""
        self._by_account[session.account_id].add(session)
        for group in session.groups:
            self._live[group].add(session)

    def detach(self, session: Session) -> None:
        """Stop delivering anything to the session."""
        for group in session.groups:
            self._discard(group, session)
        sessions = self._by_account.get(session.account_id)
        if sessions is not None:
            sessions.discard(session)
            if not sessions:
                del self._by_account[session.account_id]

    def add_group(self, session: Session, group: str, name: str) -> None:
        session.groups[group] = name
        if session in self._by_account.get(session.account_id, ()):
            self._live[group].add(session)

    def remove_group(self, session: Session, group: str) -> None:
        session.groups.pop(group, None)
        self._discard(group, session)

    def live(self, group: str) -> set[Session] | frozenset:
        return self._live.get(group, _EMPTY)

    def of_account(self, account_id: str) -> list[Session]:
        return list(self._by_account.get(account_id, ()))

    def all(self) -> list[Session]:
        return [s for sessions in self._by_account.values() for s in sessions]

    def _discard(self, group: str, session: Session) -> None:
        sessions = self._live.get(group)
        if sessions is not None:
            sessions.discard(session)
            if not sessions:
                del self._live[group]


_EMPTY: frozenset = frozenset()
