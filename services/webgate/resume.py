"""Resume: replay to one session what its page missed, then release its held live frames.

While the replay runs, the session's live frames are held (FanOut.hold_session)
and released afterwards minus the seqs the replay sent, so the page sees each
seq once and in order. A group with more than ``bound`` missed gets ``reset``
(the page reloads it from history) instead of a replay.
"""

from __future__ import annotations

from .broker import Broker
from .fanout import FanOut
from .frames import encode, message_payload, text_frame
from .sessions import Session

__all__ = ["resume", "missed_since", "RESUMED"]

RESUMED = text_frame(b'{"op":"resumed"}')


async def resume(session: Session, since: dict[str, int], *, broker: Broker, fanout: FanOut, bound: int) -> None:
    fanout.hold_session(session)
    replayed_upto: dict[str, int] = {}
    try:
        for group, seq in since.items():
            if group not in session.groups:
                continue  # left meanwhile, or never a member: nothing to replay
            messages = await missed_since(broker, group, seq, bound)
            if messages is None:
                session.push(text_frame(encode({"op": "reset", "group": group})))
                continue
            for delivery in messages:
                session.push(text_frame(message_payload(delivery)))
            replayed_upto[group] = messages[-1].seq if messages else seq
    finally:
        fanout.release_session(session, replayed_upto)
    session.push(RESUMED)


async def missed_since(broker: Broker, group: str, since: int, bound: int) -> list | None:
    """The group's messages after ``since``, oldest first; None when more than ``bound``.

    The broker caps each page (max_history_page), so this pages forward until
    done or past the bound.
    """
    missed: list = []
    after = since
    while len(missed) <= bound:
        page, more = await broker.history(group, after_seq=after, limit=bound + 1 - len(missed))
        missed += page
        if not more or not page:
            return missed if len(missed) <= bound else None
        after = page[-1].seq
    return None
