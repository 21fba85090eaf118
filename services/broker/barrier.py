"""The subscription barrier: answer a gateway's Sync only once its SUB
subscriptions made before the Sync are active on our XPUB.

Why: a gateway subscribes to a group's topic on its SUB socket and registers
the session on its DEALER socket; the two travel on different connections, so
without a barrier the first messages after "ready" could be published before
the subscription arrives and be lost. The gateway subscribes to a one-off
topic b"~" + nonce after its real subscriptions; ZeroMQ applies one peer's
subscriptions in order, so when the XPUB hands us that marker, everything
before it is active. The Sync request and the marker may arrive in either
order; both sides are kept until matched or expired (``ttl_secs``).
"""

from __future__ import annotations

from collections.abc import Hashable

__all__ = ["SubscriptionBarrier"]


class SubscriptionBarrier:
    def __init__(self, *, ttl_secs: float) -> None:
        self._ttl_secs = ttl_secs
        self._seen: dict[bytes, float] = {}                   # nonce -> when the marker arrived
        self._waiting: dict[bytes, tuple[Hashable, float]] = {}  # nonce -> (waiter, when)

    def marker_seen(self, nonce: bytes, now: float) -> Hashable | None:
        """The marker subscription arrived; returns the waiter to answer, if one is waiting."""
        waiting = self._waiting.pop(nonce, None)
        if waiting is not None:
            return waiting[0]
        self._seen[nonce] = now
        return None

    def sync_requested(self, nonce: bytes, waiter: Hashable, now: float) -> bool:
        """A Sync arrived; True when it can be answered at once, else it waits for the marker."""
        if self._seen.pop(nonce, None) is not None:
            return True
        self._waiting[nonce] = (waiter, now)
        return False

    def expire(self, now: float) -> list[Hashable]:
        """Forget entries older than the ttl; returns the waiters given up on."""
        cutoff = now - self._ttl_secs
        for nonce in [n for n, t in self._seen.items() if t < cutoff]:
            del self._seen[nonce]
        expired = [n for n, (_, t) in self._waiting.items() if t < cutoff]
        return [self._waiting.pop(n)[0] for n in expired]

    def __len__(self) -> int:
        return len(self._seen) + len(self._waiting)
