"""Web gateway settings: flags and environment, read once in the entry point."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network, ip_network

from chorus.common.config import add_flag, parse_host_port, positive
from chorus.wire.endpoints import (DEFAULT_AUTH_ADDRESS, DEFAULT_BROKER_PUB, DEFAULT_BROKER_ROUTER,
                                   DEFAULT_MEMBERSHIP_ADDRESS, DEFAULT_WEBGATE_LISTEN)
from chorus.wire.limits import DEFAULT_MAX_TEXT_CHARS

__all__ = ["Settings", "add_arguments", "settings_from_args"]

DEFAULT_LISTEN = DEFAULT_WEBGATE_LISTEN
DEFAULT_AUTH = DEFAULT_AUTH_ADDRESS
DEFAULT_MEMBERSHIP = DEFAULT_MEMBERSHIP_ADDRESS
DEFAULT_ROUTER = DEFAULT_BROKER_ROUTER
DEFAULT_PUB = DEFAULT_BROKER_PUB


@dataclass(frozen=True, kw_only=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8080
    auth_address: str = DEFAULT_AUTH
    membership_address: str = DEFAULT_MEMBERSHIP
    broker_router: str = DEFAULT_ROUTER
    broker_pub: str = DEFAULT_PUB
    auth_deadline_secs: float = 10.0       # first WebSocket frame must be auth within this
    max_text_chars: int = DEFAULT_MAX_TEXT_CHARS
    max_frame_bytes: int = 64 * 1024       # larger WebSocket frames close the socket (1009)
    max_body_bytes: int = 64 * 1024        # larger HTTP bodies get 413
    max_send_buffer_bytes: int = 1024 * 1024  # a reader this far behind is cut off (1013)
    backend_timeout_secs: float = 5.0      # gRPC and broker requests
    heartbeat_secs: float = 1.0            # Hello to the broker
    resume_max_messages: int = 200         # more missed in one group -> "reset" instead of replay
    ws_messages_per_sec: float = 20.0      # client frames per WebSocket, sustained (more: rate_limited)
    ws_messages_burst: int = 50            # ... and at once
    login_failures_per_ip: int = 30        # failed logins from one address per window (more: 429)
    login_failure_window_secs: float = 300.0
    # Peers whose X-Forwarded-For names the client (reverse proxies): the per-address login
    # limit then counts the client's address, not the proxy's.
    trusted_proxies: tuple[IPv4Network | IPv6Network, ...] = ()
    shutdown_grace_secs: float = 5.0


_D = Settings()

# flag, environment variable, default, help. A flag --some-name sets Settings.some_name.
_FLAGS = (
    ("--listen", "CHORUS_WEBGATE_LISTEN", DEFAULT_LISTEN, "HOST:PORT for HTTP and WebSockets"),
    ("--auth", "CHORUS_AUTH_ADDRESS", DEFAULT_AUTH, "auth service gRPC address"),
    ("--membership", "CHORUS_MEMBERSHIP_ADDRESS", DEFAULT_MEMBERSHIP, "membership service gRPC address"),
    ("--broker-router", "CHORUS_BROKER_ROUTER_ADDRESS", DEFAULT_ROUTER, "broker ROUTER endpoint to connect to"),
    ("--broker-pub", "CHORUS_BROKER_PUB_ADDRESS", DEFAULT_PUB, "broker PUB endpoint to connect to"),
    ("--auth-deadline-secs", "CHORUS_WS_AUTH_DEADLINE_SECS", _D.auth_deadline_secs,
     "time allowed for the WebSocket auth frame"),
    ("--max-text-chars", "CHORUS_MAX_TEXT_CHARS", _D.max_text_chars, "longest message text accepted"),
    ("--max-frame-bytes", "CHORUS_WS_MAX_FRAME_BYTES", _D.max_frame_bytes, "largest WebSocket frame accepted"),
    ("--max-body-bytes", "CHORUS_HTTP_MAX_BODY_BYTES", _D.max_body_bytes, "largest HTTP request body accepted"),
    ("--max-send-buffer-bytes", "CHORUS_WS_MAX_SEND_BUFFER_BYTES", _D.max_send_buffer_bytes,
     "unsent bytes after which a slow reader is cut off"),
    ("--resume-max-messages", "CHORUS_RESUME_MAX_MESSAGES", _D.resume_max_messages,
     "messages replayed per group before a reset instead"),
    ("--backend-timeout-secs", "CHORUS_BACKEND_TIMEOUT_SECS", _D.backend_timeout_secs,
     "deadline for gRPC and broker requests"),
    ("--ws-messages-per-sec", "CHORUS_WS_MESSAGES_PER_SEC", _D.ws_messages_per_sec,
     "frames a WebSocket may send per second, sustained"),
    ("--ws-messages-burst", "CHORUS_WS_MESSAGES_BURST", _D.ws_messages_burst,
     "frames a WebSocket may send at once"),
    ("--login-failures-per-ip", "CHORUS_LOGIN_FAILURES_PER_IP", _D.login_failures_per_ip,
     "failed logins from one IP address per window"),
    ("--login-failure-window-secs", "CHORUS_LOGIN_FAILURE_WINDOW_SECS", _D.login_failure_window_secs,
     "the window of the failed-login limits"),
    ("--trusted-proxies", "CHORUS_TRUSTED_PROXIES", "",
     "comma-separated addresses or networks of reverse proxies whose X-Forwarded-For is believed"),
)
_ENV = {flag: var for flag, var, _, _ in _FLAGS}  # so errors can name both
# Flags that are a number > 0, of the type of their Settings field.
_NUMBERS = [flag for flag, _, default, _ in _FLAGS if isinstance(default, (int, float))]


def _name(flag: str) -> str:
    return f"{flag} (${_ENV[flag]})"


def _field(flag: str) -> str:
    return flag[2:].replace("-", "_")


def add_arguments(parser: argparse.ArgumentParser, env: Mapping[str, str]) -> None:
    for flag, var, default, help_text in _FLAGS:
        add_flag(parser, flag, env=env, var=var, default=default, help=help_text)


def settings_from_args(args: argparse.Namespace, env: Mapping[str, str]) -> Settings:
    host, port = parse_host_port(args.listen, name=_name("--listen"))
    parse_host_port(args.auth, name=_name("--auth"))
    parse_host_port(args.membership, name=_name("--membership"))
    return Settings(
        host=host,
        port=port,
        auth_address=args.auth,
        membership_address=args.membership,
        broker_router=args.broker_router,
        broker_pub=args.broker_pub,
        trusted_proxies=_networks(args.trusted_proxies, name=_name("--trusted-proxies")),
        **{_field(flag): positive(getattr(args, _field(flag)), name=_name(flag),
                                  kind=type(getattr(_D, _field(flag))))
           for flag in _NUMBERS},
    )


def _networks(value: str, *, name: str) -> tuple[IPv4Network | IPv6Network, ...]:
    try:
        return tuple(ip_network(part.strip(), strict=False) for part in value.split(",") if part.strip())
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from None
