"""Joins the local sessions to the broker: registration, membership events, broker restarts.

The parts, one job each:
- sessions.LocalSessions: who is live in which group, and subscription reference counts;
- fanout.FanOut: the one delivery path from publications to sockets (and its holds);
- resume.resume: one session's replay after a reconnect;
- catchup.catch_up: every group's replay after a broker restart.
The hub wires them: it is the publications' sink (``deliver``, ``membership_event``),
registers sessions with the broker, and applies membership events.

Membership events are applied by one worker task (``run_events``), one at a
time, and only when they are news (membership_order.ChangeOrder): an event
whose change number is not higher than the last applied for its (account,
group) is a repeat (several brokers publish each change) or older than what
the pages already show, and is skipped. So a quick join-then-leave ends left
whichever order the brokers' events arrive in.
"""

from __future__ import annotations

import asyncio
import logging

from chorus.wire.pb import broker_pb2

from .broker import Broker
from .catchup import catch_up
from .errors import ApiError
from .fanout import FanOut
from .frames import encode, text_frame
from .membership_order import ChangeOrder
from .sessions import LocalSessions, Session

__all__ = ["Hub"]

log = logging.getLogger(__name__)


class Hub:
    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.sessions = LocalSessions()
        self.fanout = FanOut(self.sessions)
        # Sessions holding subscription references: unregister gives back only
        # what register took, however often it is called.
        self._registered: set[Session] = set()
        self._events: asyncio.Queue[broker_pb2.MembershipEvent] = asyncio.Queue()
        self._order = ChangeOrder()

    # the publications' sink ----------------------------------------------------

    def deliver(self, batch: list[tuple[str, bytes]]) -> None:
        self.fanout.deliver(batch)

    def membership_event(self, event: broker_pb2.MembershipEvent) -> None:
        self._events.put_nowait(event)

    # sessions ---------------------------------------------------------------

    async def register(self, session: Session, last_seqs: dict[str, int] | None = None) -> None:
        """Subscribe the session's groups and register it with the broker.

        ``last_seqs``: the groups' newest stored seqs, read before this call;
        they start the mark of groups this gateway was not yet in.
        The caller then sends ``ready`` and calls ``attach`` with no await in
        between, so every message published after registration reaches it.
        """
        newly = self.sessions.acquire(session.groups)
        for group in newly:
            if last_seqs and group in last_seqs:
                self.fanout.start_mark(group, last_seqs[group])
        self._subscribe(newly)
        try:
            await self.broker.sync()
            await self.broker.open_session(session.id, session.user, session.groups)
        except BaseException:
            self._unsubscribe(self.sessions.release(session.groups))
            raise
        self._registered.add(session)

    def attach(self, session: Session) -> None:
        self.sessions.attach(session)

    async def unregister(self, session: Session) -> None:
        session.closed = True
        self.fanout.drop_session(session)
        if session not in self._registered:
            return
        self._registered.discard(session)
        self.sessions.detach(session)
        if not self.sessions.of_account(session.account_id):
            self._order.forget(session.account_id)
        self._unsubscribe(self.sessions.release(session.groups))
        try:
            await self.broker.close_session(session.id)
        except ApiError:
            pass  # the broker drops it with the gateway or on restart anyway

    async def broker_restarted(self) -> None:
        """The broker forgot us: register every live session again, then catch the groups up."""
        sessions = self.sessions.all()
        if not sessions:
            return
        log.info("registering %d sessions with the broker again", len(sessions))
        await asyncio.gather(*(self.broker.open_session(s.id, s.user, s.groups) for s in sessions))
        await catch_up(self.broker, self.fanout, self.sessions)

    async def groups_moved(self, groups: list[str]) -> None:
        """A cluster's groups changed owner: what the old owner stored but did not publish (it
        died) reaches the pages from the store; what the new one publishes waits for it."""
        log.info("%d groups moved to another broker; catching them up", len(groups))
        await catch_up(self.broker, self.fanout, self.sessions, groups)

    # membership events -------------------------------------------------------

    async def run_events(self) -> None:
        while True:
            await self._apply(await self._events.get())

    async def _apply(self, event: broker_pb2.MembershipEvent) -> None:
        account, group = event.account_id, event.group.id
        if not self.sessions.of_account(account) or not self._order.is_news(account, group, event.change_id):
            return  # no page of that account here, a repeat, or older than what its pages show
        try:
            if event.joined:
                await self._joined(event)
            else:
                self._left(event)
        except ApiError as exc:  # not recorded: the same change from another broker may still apply
            log.warning("membership event for %s not applied: %s", event.account_id, exc)
            return
        if self.sessions.of_account(account):  # its last page may have gone while we waited
            self._order.applied(account, group, event.change_id)

    async def _joined(self, event: broker_pb2.MembershipEvent) -> None:
        group = event.group
        sessions = [s for s in self.sessions.of_account(event.account_id) if group.id not in s.groups]
        if not sessions:
            return
        self._subscribe(self.sessions.acquire([group.id] * len(sessions)))
        try:
            await self.broker.sync()
        except BaseException:
            self._unsubscribe(self.sessions.release([group.id] * len(sessions)))
            raise
        frame = text_frame(encode({"op": "joined", "group": {"id": group.id, "name": group.name}}))
        for session in sessions:
            if session.closed:  # closed while we waited: give its reference back
                self._unsubscribe(self.sessions.release([group.id]))
                continue
            self.sessions.add_group(session, group.id, group.name)
            session.push(frame)

    def _left(self, event: broker_pb2.MembershipEvent) -> None:
        group = event.group
        frame = text_frame(encode({"op": "left", "group": {"id": group.id, "name": group.name}}))
        for session in self.sessions.of_account(event.account_id):
            if group.id in session.groups:
                self.sessions.remove_group(session, group.id)
                self._unsubscribe(self.sessions.release([group.id]))
                session.push(frame)

    def _subscribe(self, groups: list[str]) -> None:
        for group in groups:
            self.broker.subscribe(group)

    def _unsubscribe(self, groups: list[str]) -> None:
        for group in groups:
            self.fanout.drop_mark(group)
            self.broker.unsubscribe(group)
