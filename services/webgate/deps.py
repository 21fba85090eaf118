"""What the HTTP and WebSocket handlers are given: built once in app.py, typed, never set later."""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web

from chorus.common.ratelimit import KeyedLimiter

from .backends import AuthClient, MembershipClient
from .broker import Broker
from .config import Settings
from .hub import Hub

__all__ = ["Deps", "DEPS"]


@dataclass
class Deps:
    settings: Settings
    auth: AuthClient
    membership: MembershipClient
    broker: Broker
    hub: Hub
    login_limiter: KeyedLimiter  # failed logins per client address
    sockets: set = field(default_factory=set)  # every open WebSocketResponse, for shutdown


DEPS = web.AppKey("deps", Deps)
