"""After a broker restart, or a group's move to another broker: fan out what the new broker published before our subscriptions reached it.

Live sessions are registered again first (the hub does that); then each group
this gateway serves is caught up from the broker's history above its mark
(the newest seq fanned out here), while that group's live deliveries are held
(FanOut.hold_group) and released right after its own catch-up. A page whose
connection never dropped therefore misses nothing. More than
``CATCH_UP_PAGE * CATCH_UP_MAX_PAGES`` missed in one group: its pages get
``reset`` (they reload the group) instead of a flood.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from .broker import Broker
from .fanout import FanOut
from .frames import encode, text_frame
from .sessions import LocalSessions

__all__ = ["catch_up", "CATCH_UP_PAGE", "CATCH_UP_MAX_PAGES"]

log = logging.getLogger(__name__)

CATCH_UP_PAGE = 100
CATCH_UP_MAX_PAGES = 10  # more missed than this in one group: its pages get "reset" instead


async def catch_up(broker: Broker, fanout: FanOut, sessions: LocalSessions,
                   groups: Iterable[str] | None = None) -> None:
    """Every live group, or only ``groups`` (those that moved to another broker of a cluster)."""
    wanted = None if groups is None else set(groups)
    marks = {g: seq for g, seq in fanout.marks().items() if sessions.live(g) and (wanted is None or g in wanted)}
    for group in marks:
        fanout.hold_group(group)
    try:
        await broker.sync()  # from here on, live delivery is complete
        for group in marks:
            await _catch_up_group(broker, fanout, sessions, group)
            fanout.release_group(group)  # each group's live traffic waits for its own catch-up only
    finally:
        for group in marks:  # also after a failure: never keep live messages
            fanout.release_group(group)


async def _catch_up_group(broker: Broker, fanout: FanOut, sessions: LocalSessions, group: str) -> None:
    for _ in range(CATCH_UP_MAX_PAGES):
        deliveries, more = await broker.history(group, after_seq=fanout.marks().get(group, 0),
                                                limit=CATCH_UP_PAGE)
        for delivery in deliveries:
            fanout.fan_out(delivery)
        if not more:
            return
    log.warning("group %s missed more than %d messages here; its pages reload it",
                group, CATCH_UP_PAGE * CATCH_UP_MAX_PAGES)
    frame = text_frame(encode({"op": "reset", "group": group}))
    for session in sessions.live(group):
        session.push(frame)
