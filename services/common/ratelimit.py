"""Token buckets: how often a key may act, with room for a burst.

Pure logic: no I/O, no clock of its own. Every call takes ``now`` (seconds
from ``time.monotonic()`` in the services, any number in tests), so the tests
step time by hand and nothing here ever sleeps.

Invariants:
- A bucket holds at most ``burst`` tokens and gains ``per_sec`` tokens a
  second; a new bucket starts full.
- ``take`` either spends one token and answers 0.0, or spends nothing and
  answers the seconds until a token will be there (always > 0): the caller's
  Retry-After. Refused attempts cost nothing, so a client that keeps trying
  while refused is let in as soon as the bucket refills.
- ``give_back`` returns a token spent by an attempt that turned out not to
  count (a successful login), never past ``burst``.
- ``KeyedLimiter`` keeps at most ``max_keys`` buckets. Past that it forgets
  the buckets that are full again (those keys are idle: forgetting them
  changes nothing), and if every bucket is in use, the oldest ones: under a
  flood of distinct keys a forgotten key starts again with a full burst,
  memory stays bounded.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

__all__ = ["Rate", "TokenBucket", "KeyedLimiter", "DEFAULT_MAX_KEYS"]

DEFAULT_MAX_KEYS = 100_000


@dataclass(frozen=True, slots=True)
class Rate:
    """``burst`` actions at once, then ``per_sec`` actions a second."""

    per_sec: float
    burst: int

    def __post_init__(self) -> None:
        if not self.per_sec > 0 or self.burst < 1:
            raise ValueError(f"a rate needs per_sec > 0 and burst >= 1, got {self}")

    @classmethod
    def per_window(cls, count: int, window_secs: float) -> "Rate":
        """``count`` actions per ``window_secs``, refilled evenly: a burst of ``count``."""
        return cls(per_sec=count / window_secs, burst=count)


class TokenBucket:
    __slots__ = ("_rate", "_tokens", "_stamp")

    def __init__(self, rate: Rate, now: float) -> None:
        self._rate = rate
        self._tokens = float(rate.burst)
        self._stamp = now

    def _refill(self, now: float) -> None:
        # A clock that went backwards (or an out-of-order caller) adds nothing.
        elapsed = max(0.0, now - self._stamp)
        self._tokens = min(float(self._rate.burst), self._tokens + elapsed * self._rate.per_sec)
        self._stamp = max(self._stamp, now)

    def take(self, now: float) -> float:
        """0.0 after spending a token; else the seconds until one is there (nothing spent)."""
        self._refill(now)
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return 0.0
        return (1.0 - self._tokens) / self._rate.per_sec

    def give_back(self, now: float) -> None:
        self._refill(now)
        self._tokens = min(float(self._rate.burst), self._tokens + 1.0)

    def is_full(self, now: float) -> bool:
        self._refill(now)
        return self._tokens >= self._rate.burst

    @classmethod
    def restore(cls, rate: Rate, tokens: float, stamp: float) -> "TokenBucket":
        """A bucket as ``state`` left it (kept elsewhere, e.g. in a database row)."""
        bucket = cls(rate, stamp)
        bucket._tokens = min(float(rate.burst), tokens)
        return bucket

    @property
    def state(self) -> tuple[float, float]:
        """(tokens, stamp): what ``restore`` needs."""
        return self._tokens, self._stamp


class KeyedLimiter:
    """One TokenBucket per key (an IP address, an account), created on first use."""

    def __init__(self, rate: Rate, *, max_keys: int = DEFAULT_MAX_KEYS) -> None:
        if max_keys < 1:
            raise ValueError(f"max_keys must be >= 1, got {max_keys}")
        self.rate = rate
        self._max_keys = max_keys
        self._buckets: dict[Hashable, TokenBucket] = {}

    def take(self, key: Hashable, now: float) -> float:
        """As TokenBucket.take for ``key``'s bucket."""
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self._max_keys:
                self._forget(now)
            bucket = self._buckets[key] = TokenBucket(self.rate, now)
        return bucket.take(now)

    def give_back(self, key: Hashable, now: float) -> None:
        bucket = self._buckets.get(key)
        if bucket is not None:
            bucket.give_back(now)

    def __len__(self) -> int:
        return len(self._buckets)

    def _forget(self, now: float) -> None:
        """Make room: drop every full bucket; failing that, the oldest half."""
        full = [key for key, bucket in self._buckets.items() if bucket.is_full(now)]
        for key in full:
            del self._buckets[key]
        if len(self._buckets) >= self._max_keys:
            for key in list(self._buckets)[: max(1, len(self._buckets) // 2)]:
                del self._buckets[key]
