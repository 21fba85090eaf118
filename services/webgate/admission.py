"""Who may hold a connection, a WebSocket or a session, and how long a connection may take
to ask: the gateway's connection limits, so that one address cannot deny service to others.

Pure: counts and deadlines, no sockets and no clock of its own (``now`` comes in).
listener.py carries the gate and the head deadline out on real connections; ws.py asks
the WebSocket and session caps (``Tally``).

    Gate.open(peer, exempt=) -> Ticket     serve it; Gate.close(ticket) once it is gone
                              | Refusal    answer this status, then close (a cap is reached)
                              | None       nothing can be answered: drop it at once
    Tally.add(key) -> bool                 one cap per key: WebSockets per address, sessions per account
    HeadDeadline                           when the connection's next request head must be complete
    connection_budget(...)                 the global cap, below the open-files limit

Invariants:
- The gate serves at most ``max_connections`` connections, and at most ``max_per_address``
  from one peer address unless that peer is exempt (a trusted reverse proxy, which limits
  per client itself: nginx's ``limit_conn`` in compose). Refusals being answered are at most
  ``max_refusing`` more; past that a connection is dropped unanswered. So connections never
  take more than ``max_connections + max_refusing`` open files, and the process never meets
  EMFILE because of them.
- A peer's address is counted in one form: an IPv4 address mapped into IPv6 (a dual-stack
  listener's ``::ffff:a.b.c.d``) counts as the IPv4 address.
- Every count goes back exactly once (closing a Ticket twice is harmless) and a key at 0 is
  forgotten, so memory follows what is open, not what ever was.
- A connection's head deadline runs from accept, and again from the first byte after each
  answer; never while a request is handled (so never during a WebSocket's life). An idle
  keep-alive connection is aiohttp's to close (its ``keepalive_timeout``).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Hashable
from dataclasses import dataclass

__all__ = ["Gate", "Ticket", "Refusal", "Tally", "HeadDeadline", "connection_budget", "peer_key",
           "CAP_RETRY_AFTER_SECS"]

CAP_RETRY_AFTER_SECS = 5  # a cap frees up when someone leaves, not on a clock: a modest hint


@dataclass(frozen=True, slots=True)
class Refusal:
    """An answer to a connection the gateway will not serve: HTTP status, error code, words."""

    status: int
    code: str
    message: str
    retry_after_secs: int = CAP_RETRY_AFTER_SECS


@dataclass(slots=True, eq=False)
class Ticket:
    """One served connection; ``address`` is None when it is not counted per address."""

    address: str | None
    open: bool = True


class Tally:
    """How many of something each key holds, at most ``cap`` each."""

    __slots__ = ("cap", "_counts")

    def __init__(self, cap: int) -> None:
        if cap < 1:
            raise ValueError(f"a cap must be at least 1, got {cap}")
        self.cap = cap
        self._counts: dict[Hashable, int] = {}

    def add(self, key: Hashable) -> bool:
        """Count one more for ``key``; False (nothing counted) when it already holds ``cap``."""
        count = self._counts.get(key, 0)
        if count >= self.cap:
            return False
        self._counts[key] = count + 1
        return True

    def remove(self, key: Hashable) -> None:
        count = self._counts.get(key, 0)
        if count <= 1:
            self._counts.pop(key, None)
        else:
            self._counts[key] = count - 1

    def count(self, key: Hashable) -> int:
        return self._counts.get(key, 0)

    def __len__(self) -> int:
        """Keys holding at least one."""
        return len(self._counts)


class Gate:
    """Accept-time decisions for raw connections: the global cap and the per-address cap."""

    def __init__(self, *, max_connections: int, max_per_address: int, max_refusing: int) -> None:
        if max_connections < 1 or max_refusing < 0:
            raise ValueError(f"need max_connections >= 1 and max_refusing >= 0, "
                             f"got {max_connections} and {max_refusing}")
        self.max_connections = max_connections
        self.max_refusing = max_refusing
        self._per_address = Tally(max_per_address)
        self.served = 0
        self.refusing = 0
        self.full = Refusal(503, "unavailable", f"the server is at its limit of {max_connections} "
                            "connections; try again shortly")
        self.crowded = Refusal(429, "rate_limited", f"too many connections from your address: at most "
                               f"{max_per_address} at once")

    def open(self, peer: str, *, exempt: bool = False) -> Ticket | Refusal | None:
        """Serve (a Ticket), refuse with an answer (a Refusal, to be ended by ``refused``),
        or drop unanswered (None), the connection just accepted from ``peer``."""
        if self.served >= self.max_connections:
            return self._refuse(self.full)
        address = None if exempt else peer_key(peer)
        if address is not None and not self._per_address.add(address):
            return self._refuse(self.crowded)
        self.served += 1
        return Ticket(address)

    def close(self, ticket: Ticket) -> None:
        if not ticket.open:
            return
        ticket.open = False
        self.served -= 1
        if ticket.address is not None:
            self._per_address.remove(ticket.address)

    def refused(self) -> None:
        """A refused connection (answered or not) is gone."""
        self.refusing -= 1

    def from_address(self, peer: str) -> int:
        return self._per_address.count(peer_key(peer))

    def _refuse(self, refusal: Refusal) -> Refusal | None:
        if self.refusing >= self.max_refusing:
            return None
        self.refusing += 1
        return refusal


def peer_key(peer: str) -> str:
    """The form in which an address is counted: IPv4-mapped IPv6 as plain IPv4."""
    try:
        ip = ipaddress.ip_address(peer)
    except ValueError:
        return peer
    mapped = getattr(ip, "ipv4_mapped", None)
    return str(mapped) if mapped is not None else str(ip)


class HeadDeadline:
    """When a connection's next request head (request line and headers) must be complete.

    ``deadline`` is None while no deadline runs: a request is being handled (``head_received``
    until ``answered``), or the connection is idle between requests and has sent nothing yet.
    """

    __slots__ = ("_timeout", "deadline", "_busy")

    def __init__(self, timeout_secs: float, now: float) -> None:
        self._timeout = timeout_secs
        self.deadline: float | None = now + timeout_secs  # the first request: from accept
        self._busy = False

    def data(self, now: float) -> bool:
        """Bytes arrived; True when they start a new request head (a new deadline)."""
        if self.deadline is None and not self._busy:
            self.deadline = now + self._timeout
            return True
        return False

    def head_received(self) -> None:
        self._busy, self.deadline = True, None

    def answered(self) -> None:
        self._busy, self.deadline = False, None

    def expired(self, now: float) -> bool:
        return self.deadline is not None and now >= self.deadline


def connection_budget(open_files: int, reserved_fds: int, wanted: int | None) -> int:
    """The global connection cap: ``wanted``, or when None all the open files but
    ``reserved_fds``; ValueError naming the settings when the open-files limit cannot give it."""
    available = open_files - reserved_fds
    if available < 1:
        raise ValueError(f"the open-files limit ({open_files}, ulimit -n) leaves no room for connections once "
                         f"{reserved_fds} are reserved: raise it, or lower --reserved-fds ($CHORUS_RESERVED_FDS)")
    if wanted is None:
        return available
    if wanted > available:
        raise ValueError(f"--max-connections ($CHORUS_MAX_CONNECTIONS) is {wanted}, more than the open-files "
                         f"limit allows: {open_files} (ulimit -n) - {reserved_fds} reserved = {available}")
    return wanted
