"""Live fan-out: each publication decoded, encoded and framed ONCE, then handed to every live session.

Everything that reaches a session's socket from the broker goes through one
path, ``_route``: live batches, deliveries released after a group's catch-up,
caught-up history. Two kinds of holding sit on that path:
- a GROUP being caught up after a broker restart (``hold_group``): its live
  deliveries are kept in order and released through the same path after;
- a SESSION resuming (``hold_session``): its frames are kept and released
  afterwards minus the seqs its replay already sent (``release_session``).
The fast path (nobody holding) pays for neither.

Invariants:
- A seq at or below its group's mark (the newest seq fanned out here) is never
  fanned out again: catch-up and live delivery may overlap, pages may not see a
  message twice. One int per subscribed group, not per session.
- Within a batch, frames bound for one socket are written together, in
  publication order: one syscall instead of one per frame, which is what lets
  a gateway that fell behind catch up.

Fan-out policy: nothing here awaits; ``Session.push`` never blocks (it skips
closed sessions and cuts off a socket whose unsent bytes pass the limit);
no per-recipient encoding: every recipient gets the same bytes.
"""

from __future__ import annotations

import logging

from google.protobuf.message import DecodeError

from chorus.wire.pb import broker_pb2

from .frames import message_payload, text_frame
from .sessions import LocalSessions, Session

__all__ = ["FanOut"]

log = logging.getLogger(__name__)


class _Writes:
    """Frames per session for one batch, written at the end: joined, one write each."""

    __slots__ = ("frames",)

    def __init__(self) -> None:
        self.frames: dict[Session, list[bytes]] = {}

    def add(self, session: Session, frame: bytes) -> None:
        frames = self.frames.get(session)
        if frames is None:
            self.frames[session] = [frame]
        else:
            frames.append(frame)

    def write(self) -> None:
        for session, frames in self.frames.items():
            session.push(frames[0] if len(frames) == 1 else b"".join(frames))


class FanOut:
    def __init__(self, sessions: LocalSessions) -> None:
        self._sessions = sessions
        self._marks: dict[str, int] = {}                                   # group -> newest seq fanned out
        self._held_groups: dict[str, list[broker_pb2.Delivery]] = {}       # group -> held while caught up
        self._held_sessions: dict[Session, list[tuple[str, int, bytes]]] = {}  # session -> held while resuming

    # marks ------------------------------------------------------------------

    def start_mark(self, group: str, seq: int) -> None:
        """A group newly subscribed here: its newest stored seq when the first session registered."""
        self._marks[group] = seq

    def drop_mark(self, group: str) -> None:
        self._marks.pop(group, None)

    def marks(self) -> dict[str, int]:
        return dict(self._marks)

    # the delivery path --------------------------------------------------------

    def deliver(self, batch: list[tuple[str, bytes]]) -> None:
        """A batch of (group, Delivery bytes) in publication order, from the broker."""
        writes = _Writes() if len(batch) > 1 else None
        live = self._sessions.live
        for group, payload in batch:
            sessions = live(group)
            if not sessions:
                continue
            delivery = _decode(payload)
            if delivery is None:
                continue
            held = self._held_groups.get(group)
            if held is not None:
                held.append(delivery)
            elif self._advance(group, delivery.seq):
                self._route(group, delivery.seq, text_frame(message_payload(delivery)), sessions, writes)
        if writes is not None:
            writes.write()

    def fan_out(self, delivery: broker_pb2.Delivery) -> None:
        """One caught-up or released delivery, unless already fanned out here."""
        group = delivery.group_id
        if self._advance(group, delivery.seq):
            sessions = self._sessions.live(group)
            if sessions:
                self._route(group, delivery.seq, text_frame(message_payload(delivery)), sessions, None)

    def _advance(self, group: str, seq: int) -> bool:
        """Mark ``seq`` fanned out here; False when it already was."""
        if seq <= self._marks.get(group, 0):
            return False
        self._marks[group] = seq
        return True

    def _route(self, group: str, seq: int, frame: bytes, sessions, writes: _Writes | None) -> None:
        held_sessions = self._held_sessions
        if held_sessions:  # someone is resuming: the slow path
            for session in sessions:
                held = held_sessions.get(session)
                if held is not None:
                    held.append((group, seq, frame))
                elif writes is None:
                    session.push(frame)
                else:
                    writes.add(session, frame)
        elif writes is None:
            for session in sessions:
                session.push(frame)
        else:
            add = writes.add
            for session in sessions:
                add(session, frame)

    # holding ---------------------------------------------------------------

    def hold_group(self, group: str) -> None:
        self._held_groups.setdefault(group, [])

    def release_group(self, group: str) -> None:
        """Fan out what was held for ``group`` (idempotent)."""
        for delivery in self._held_groups.pop(group, ()):
            self.fan_out(delivery)

    def hold_session(self, session: Session) -> None:
        self._held_sessions.setdefault(session, [])

    def release_session(self, session: Session, replayed_upto: dict[str, int]) -> None:
        """Push the held frames the replay did not already send, in order (idempotent)."""
        for group, seq, frame in self._held_sessions.pop(session, ()):
            if seq > replayed_upto.get(group, 0):
                session.push(frame)

    def drop_session(self, session: Session) -> None:
        self._held_sessions.pop(session, None)


def _decode(payload: bytes) -> broker_pb2.Delivery | None:
    try:
        return broker_pb2.Delivery.FromString(payload)
    except DecodeError:
        log.error("dropped a publication that is not a Delivery (%d bytes)", len(payload))
        return None
