"""Joins the local sessions to the broker: registration, fan-out, membership events.

Fan-out: each Delivery from the broker is decoded, JSON-encoded and framed
ONCE, then the same bytes are pushed to every live session in the group (see
sessions.Session.push for the per-socket policy).

Membership events are applied by one worker task, in the order the broker
published them, so a quick join-then-leave can never end up joined.

Resume: while a session replays what it missed (``hold_live`` ..
``release_live``), its live frames are held, then released in order minus
those the replay already sent, so the page sees each seq once and in order.
The fan-out loop pays for this only while some session is resuming.

Broker restart: live sessions are registered again, and then each group is
caught up from the broker's history above the newest seq this gateway has fanned
out (messages the new broker published before our subscriptions reached it),
holding that group's live messages meanwhile. A page whose connection never
dropped therefore misses nothing either. Per group, not per session: one int
per group is kept, and a seq at or below it is never fanned out twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from google.protobuf.message import DecodeError

from chorus.wire.pb import broker_pb2

from .broker_client import BrokerClient
from .errors import ApiError
from .frames import encode, message_payload, text_frame
from .sessions import LocalSessions, Session

__all__ = ["Hub"]

log = logging.getLogger(__name__)

CATCH_UP_PAGE = 100
CATCH_UP_MAX_PAGES = 10  # more missed than this in one group: its pages get "reset" instead


class Hub:
    def __init__(self, broker: BrokerClient) -> None:
        self.broker = broker
        self.sessions = LocalSessions()
        # Sessions holding subscription references: unregister gives back only
        # what register took, however often it is called.
        self._registered: set[Session] = set()
        # session -> live frames held while it resumes: (group, seq, frame)
        self._held: dict[Session, list[tuple[str, int, bytes]]] = {}
        # subscribed group -> newest seq fanned out here (or stored when first subscribed)
        self._last_seq: dict[str, int] = {}
        # group -> live deliveries held while it is caught up after a broker restart
        self._catching_up: dict[str, list[broker_pb2.Delivery]] = {}
        self._events: asyncio.Queue[broker_pb2.MembershipEvent] = asyncio.Queue()
        self._worker: asyncio.Task | None = None
        broker.on_deliveries = self._deliver
        broker.on_event = self._events.put_nowait
        broker.on_fresh = self._broker_restarted

    async def start(self) -> None:
        await self.broker.start()
        self._worker = asyncio.create_task(self._apply_events(), name="membership-events")

    async def stop(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        await self.broker.close()

    # sessions ---------------------------------------------------------------

    async def register(self, session: Session, last_seqs: dict[str, int] | None = None) -> None:
        """Subscribe the session's groups and register it with the broker.

        ``last_seqs``: the groups' newest stored seqs, read before this call;
        they start the catch-up mark of groups this gateway was not yet in.
        The caller then sends ``ready`` and calls ``attach`` with no await in
        between, so every message published after registration reaches it.
        """
        newly = self.sessions.acquire(session.groups)
        for group in newly:
            if last_seqs and group in last_seqs:
                self._last_seq[group] = last_seqs[group]
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

    def hold_live(self, session: Session) -> None:
        """Hold the session's live messages until ``release_live`` (idempotent)."""
        self._held.setdefault(session, [])

    def release_live(self, session: Session, replayed_upto: dict[str, int]) -> None:
        """Push the held messages the replay did not already send, in order."""
        for group, seq, frame in self._held.pop(session, ()):
            if seq > replayed_upto.get(group, 0):
                session.push(frame)

    async def unregister(self, session: Session) -> None:
        session.closed = True
        self._held.pop(session, None)
        if session not in self._registered:
            return
        self._registered.discard(session)
        self.sessions.detach(session)
        self._unsubscribe(self.sessions.release(session.groups))
        try:
            await self.broker.close_session(session.id)
        except ApiError:
            pass  # the broker drops it with the gateway or on restart anyway

    async def _broker_restarted(self) -> None:
        sessions = self.sessions.all()
        if not sessions:
            return
        log.info("registering %d sessions with the broker again", len(sessions))
        await asyncio.gather(*(self.broker.open_session(s.id, s.user, s.groups) for s in sessions))
        await self._catch_up()

    async def _catch_up(self) -> None:
        """Fan out what the new broker published before our subscriptions reached it."""
        groups = [g for g in self._last_seq if self.sessions.live(g)]
        for group in groups:
            self._catching_up.setdefault(group, [])
        try:
            await self.broker.sync()  # from here on, live delivery is complete
            for group in groups:
                await self._catch_up_group(group)
                self._release_held(group)  # each group's live traffic waits for its own catch-up only
        finally:
            for group in groups:  # also after a failure: never keep live messages
                self._release_held(group)

    def _release_held(self, group: str) -> None:
        for delivery in self._catching_up.pop(group, ()):
            self._fan_out(group, delivery)

    async def _catch_up_group(self, group: str) -> None:
        for _ in range(CATCH_UP_MAX_PAGES):
            deliveries, more = await self.broker.history(
                group, after_seq=self._last_seq.get(group, 0), limit=CATCH_UP_PAGE)
            for delivery in deliveries:
                self._fan_out(group, delivery)
            if not more:
                return
        log.warning("group %s missed more than %d messages here; its pages reload it",
                    group, CATCH_UP_PAGE * CATCH_UP_MAX_PAGES)
        frame = text_frame(encode({"op": "reset", "group": group}))
        for session in self.sessions.live(group):
            session.push(frame)

    # fan-out ----------------------------------------------------------------

    def _deliver(self, batch: list[tuple[str, bytes]]) -> None:
        """Fan out a batch of publications. When several frames of the batch go to one
        socket they are written together: one syscall instead of one per frame, which is
        what lets a gateway that fell behind catch up."""
        if len(batch) == 1 or self._held or self._catching_up:
            for group, payload in batch:
                self._deliver_one(group, payload)
            return
        out: dict[Session, list[bytes]] = {}
        for group, payload in batch:
            sessions = self.sessions.live(group)
            if not sessions:
                continue
            delivery = self._fresh_delivery(group, payload)
            if delivery is None:
                continue
            frame = text_frame(message_payload(delivery))
            for session in sessions:
                frames = out.get(session)
                if frames is None:
                    out[session] = [frame]
                else:
                    frames.append(frame)
        for session, frames in out.items():
            session.push(frames[0] if len(frames) == 1 else b"".join(frames))

    def _deliver_one(self, group: str, payload: bytes) -> None:
        sessions = self.sessions.live(group)
        if not sessions:
            return
        if group in self._catching_up:
            delivery = _decode(payload)
            if delivery is not None:
                self._catching_up[group].append(delivery)
            return
        delivery = self._fresh_delivery(group, payload)
        if delivery is not None:
            self._push(group, delivery, sessions)

    def _advance(self, group: str, seq: int) -> bool:
        """Mark ``seq`` fanned out here; False when it already was (a catch-up overlap)."""
        if seq <= self._last_seq.get(group, 0):
            return False
        self._last_seq[group] = seq
        return True

    def _fresh_delivery(self, group: str, payload: bytes) -> broker_pb2.Delivery | None:
        """The Delivery, unless unreadable or already fanned out here."""
        delivery = _decode(payload)
        return delivery if delivery is not None and self._advance(group, delivery.seq) else None

    def _fan_out(self, group: str, delivery: broker_pb2.Delivery) -> None:
        """A caught-up or held delivery, unless already fanned out here."""
        if self._advance(group, delivery.seq):
            sessions = self.sessions.live(group)
            if sessions:
                self._push(group, delivery, sessions)

    def _push(self, group: str, delivery: broker_pb2.Delivery, sessions) -> None:
        """One delivery to these sessions, honouring resumes in progress."""
        frame = text_frame(message_payload(delivery))
        if self._held:  # someone is resuming: the slow path
            for session in sessions:
                held = self._held.get(session)
                if held is None:
                    session.push(frame)
                else:
                    held.append((group, delivery.seq, frame))
            return
        for session in sessions:
            session.push(frame)

    # membership events -------------------------------------------------------

    async def _apply_events(self) -> None:
        while True:
            event = await self._events.get()
            try:
                if event.joined:
                    await self._joined(event)
                else:
                    self._left(event)
            except ApiError as exc:
                log.warning("membership event for %s not applied: %s", event.account_id, exc)

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
            self._last_seq.pop(group, None)
            self.broker.unsubscribe(group)


def _decode(payload: bytes) -> broker_pb2.Delivery | None:
    try:
        return broker_pb2.Delivery.FromString(payload)
    except DecodeError:
        log.error("dropped a publication that is not a Delivery (%d bytes)", len(payload))
        return None
