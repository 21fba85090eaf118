"""Logging out closes every socket opened with the token, on every gateway.

Auth stores each revocation with its time (``revoked_at_ms``). Each gateway polls
``Auth.ListRevocations(since)`` every ``revocation_poll_secs`` (default 1 s) and closes the
sockets whose token is named, with 4001 "token revoked". Polling the store, rather than
hearing of logouts from whichever gateway served them, works for logouts made through any
path (another gateway, another backend calling auth) and survives restarts of anything.

- ``Watched`` (pure): which sockets hold which token id. A refresh moves a socket to its new
  token; a closed socket leaves.
- ``RevocationPoller``: the loop. Each answer's ``as_of_ms`` (auth's clock) minus
  ``OVERLAP_MS`` is the next ``since``, so a revocation committed a little after its
  timestamp was taken is still seen; ids seen twice close nothing twice (their sockets left).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Callable

from .backends import AuthClient
from .errors import ApiError

__all__ = ["Watched", "RevocationPoller", "OVERLAP_MS"]

log = logging.getLogger(__name__)

OVERLAP_MS = 5_000  # each poll looks this far behind the previous answer


class Watched:
    """Token id -> the closers of the sockets opened (or refreshed) with it."""

    def __init__(self) -> None:
        self._by_token: dict[str, set[Callable[[], None]]] = defaultdict(set)

    def watch(self, token_id: str, close: Callable[[], None]) -> None:
        if token_id:  # site tokens have none: they end at their exp
            self._by_token[token_id].add(close)

    def unwatch(self, token_id: str, close: Callable[[], None]) -> None:
        closers = self._by_token.get(token_id)
        if closers is not None:
            closers.discard(close)
            if not closers:
                del self._by_token[token_id]

    def revoked(self, token_ids) -> list[Callable[[], None]]:
        """The closers of every socket holding one of ``token_ids``; they are no longer watched."""
        return [close for token_id in token_ids for close in self._by_token.pop(token_id, ())]

    def __len__(self) -> int:
        return sum(len(closers) for closers in self._by_token.values())


class RevocationPoller:
    def __init__(self, auth: AuthClient, watched: Watched, *, interval_secs: float,
                 clock: Callable[[], float] = time.time) -> None:
        self._auth = auth
        self._watched = watched
        self._interval_secs = interval_secs
        self._since_ms = int(clock() * 1000) - OVERLAP_MS  # nothing older can concern sockets not yet open

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self._interval_secs)
            try:
                await self.poll()
            except ApiError as exc:  # auth is down: try again next round, from the same point
                log.warning("cannot ask auth for revoked tokens: %s", exc.message)

    async def poll(self) -> int:
        """Close the sockets of tokens revoked since the last answer; how many were closed."""
        token_ids, as_of_ms = await self._auth.revocations(self._since_ms)
        self._since_ms = max(self._since_ms, as_of_ms - OVERLAP_MS)
        closers = self._watched.revoked(token_ids)
        for close in closers:
            close()
        return len(closers)
