"""Failed-login limits every auth replica shares: KeyedLimiter's interface over the database.

Each kind of key (usernames of untrusted attempts, known devices) has its own
rate and its own key prefix in the one ``login_limits`` table (storage.py),
so replicas behind a balancer count one person's failures once, wherever
they land. Buckets that refilled are forgotten now and then (every
``PURGE_EVERY`` takes), so a flood of made-up usernames does not grow the
table without bound. The clock is wall time: replicas may be on different hosts.
"""

from __future__ import annotations

from chorus.common.ratelimit import Rate

from .storage import MAX_LIMIT_KEY_CHARS, AuthStore

__all__ = ["SharedLimiter", "PURGE_EVERY"]

PURGE_EVERY = 1000


class SharedLimiter:
    def __init__(self, store: AuthStore, rate: Rate, *, kind: str) -> None:
        self.rate = rate
        self._store = store
        self._prefix = f"{kind}:"
        self._takes = 0

    def take(self, key: str, now: float) -> float:
        """0.0 after spending a token; else the seconds until one is there (nothing spent)."""
        self._takes += 1
        if self._takes % PURGE_EVERY == 0:
            self._store.purge_full_login_limits(self._prefix, self.rate, now)
        return self._store.take_login_token(self._key(key), self.rate, now)

    def give_back(self, key: str, now: float) -> None:
        self._store.give_back_login_token(self._key(key), self.rate, now)

    def _key(self, key: str) -> str:
        return (self._prefix + key)[:MAX_LIMIT_KEY_CHARS]
