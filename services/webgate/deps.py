"""What the HTTP and WebSocket handlers are given: built once in app.py, typed, never set later."""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web

from chorus.common.ratelimit import KeyedLimiter, Rate

from .admission import Tally
from .backends import AuthClient, MembershipClient
from .broker import Broker
from .config import Settings
from .hub import Hub
from .identity import Identities
from .revocations import Watched

__all__ = ["Deps", "DEPS", "SocketLimits", "LIMITS"]


@dataclass
class Deps:
    settings: Settings
    auth: AuthClient
    identities: Identities  # who a token names: Chorus's own tokens and sites' tokens alike
    membership: MembershipClient
    broker: Broker
    hub: Hub
    login_limiter: KeyedLimiter  # failed logins per client address
    register_limiter: KeyedLimiter  # registrations per client address
    sockets: set = field(default_factory=set)  # every open WebSocketResponse, for shutdown
    watched: Watched = field(default_factory=Watched)  # sockets by token id, closed when it is revoked


DEPS = web.AppKey("deps", Deps)


@dataclass(frozen=True)
class SocketLimits:
    """The caps and the rate every WebSocket of this gateway shares (made from settings in app.py)."""

    websockets_per_address: Tally  # open WebSockets per client address
    sessions_per_account: Tally    # open sessions per account
    account_posts: KeyedLimiter    # posts per account, all its sockets together

    @classmethod
    def from_settings(cls, settings: Settings) -> "SocketLimits":
        return cls(websockets_per_address=Tally(settings.max_websockets_per_address),
                   sessions_per_account=Tally(settings.max_sessions_per_account),
                   account_posts=KeyedLimiter(Rate(per_sec=settings.account_posts_per_sec,
                                                   burst=settings.account_posts_burst)))


LIMITS = web.AppKey("limits", SocketLimits)
