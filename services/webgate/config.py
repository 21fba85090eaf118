"""Web gateway settings: flags and environment, read once in the entry point."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import dataclass

from chorus.broker.config import DEFAULT_MAX_TEXT_CHARS, DEFAULT_PUB, DEFAULT_ROUTER
from chorus.common.config import add_flag, parse_host_port, positive

__all__ = ["Settings", "add_arguments", "settings_from_args"]

DEFAULT_LISTEN = "127.0.0.1:8080"
DEFAULT_AUTH = "127.0.0.1:50051"
DEFAULT_MEMBERSHIP = "127.0.0.1:50052"


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
    shutdown_grace_secs: float = 5.0


# flag -> environment variable, so errors can name both
_ENV = {
    "--listen": "CHORUS_WEBGATE_LISTEN",
    "--auth": "CHORUS_AUTH_ADDRESS",
    "--membership": "CHORUS_MEMBERSHIP_ADDRESS",
    "--broker-router": "CHORUS_BROKER_ROUTER_ADDRESS",
    "--broker-pub": "CHORUS_BROKER_PUB_ADDRESS",
    "--auth-deadline-secs": "CHORUS_WS_AUTH_DEADLINE_SECS",
    "--max-text-chars": "CHORUS_MAX_TEXT_CHARS",
    "--resume-max-messages": "CHORUS_RESUME_MAX_MESSAGES",
    "--max-frame-bytes": "CHORUS_WS_MAX_FRAME_BYTES",
    "--max-body-bytes": "CHORUS_HTTP_MAX_BODY_BYTES",
    "--max-send-buffer-bytes": "CHORUS_WS_MAX_SEND_BUFFER_BYTES",
    "--backend-timeout-secs": "CHORUS_BACKEND_TIMEOUT_SECS",
}


def _name(flag: str) -> str:
    return f"{flag} (${_ENV[flag]})"


def add_arguments(parser: argparse.ArgumentParser, env: Mapping[str, str]) -> None:
    d = Settings()
    add_flag(parser, "--listen", env=env, var="CHORUS_WEBGATE_LISTEN", default=DEFAULT_LISTEN,
             help="HOST:PORT for HTTP and WebSockets")
    add_flag(parser, "--auth", env=env, var="CHORUS_AUTH_ADDRESS", default=DEFAULT_AUTH,
             help="auth service gRPC address")
    add_flag(parser, "--membership", env=env, var="CHORUS_MEMBERSHIP_ADDRESS", default=DEFAULT_MEMBERSHIP,
             help="membership service gRPC address")
    add_flag(parser, "--broker-router", env=env, var="CHORUS_BROKER_ROUTER_ADDRESS", default=DEFAULT_ROUTER,
             help="broker ROUTER endpoint to connect to")
    add_flag(parser, "--broker-pub", env=env, var="CHORUS_BROKER_PUB_ADDRESS", default=DEFAULT_PUB,
             help="broker PUB endpoint to connect to")
    add_flag(parser, "--auth-deadline-secs", env=env, var="CHORUS_WS_AUTH_DEADLINE_SECS",
             default=d.auth_deadline_secs, help="time allowed for the WebSocket auth frame")
    add_flag(parser, "--max-text-chars", env=env, var="CHORUS_MAX_TEXT_CHARS",
             default=d.max_text_chars, help="longest message text accepted")
    add_flag(parser, "--max-frame-bytes", env=env, var="CHORUS_WS_MAX_FRAME_BYTES",
             default=d.max_frame_bytes, help="largest WebSocket frame accepted")
    add_flag(parser, "--max-body-bytes", env=env, var="CHORUS_HTTP_MAX_BODY_BYTES",
             default=d.max_body_bytes, help="largest HTTP request body accepted")
    add_flag(parser, "--max-send-buffer-bytes", env=env, var="CHORUS_WS_MAX_SEND_BUFFER_BYTES",
             default=d.max_send_buffer_bytes, help="unsent bytes after which a slow reader is cut off")
    add_flag(parser, "--resume-max-messages", env=env, var="CHORUS_RESUME_MAX_MESSAGES",
             default=d.resume_max_messages, help="messages replayed per group before a reset instead")
    add_flag(parser, "--backend-timeout-secs", env=env, var="CHORUS_BACKEND_TIMEOUT_SECS",
             default=d.backend_timeout_secs, help="deadline for gRPC and broker requests")


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
        auth_deadline_secs=positive(args.auth_deadline_secs, name=_name("--auth-deadline-secs"), kind=float),
        max_text_chars=positive(args.max_text_chars, name=_name("--max-text-chars")),
        max_frame_bytes=positive(args.max_frame_bytes, name=_name("--max-frame-bytes")),
        max_body_bytes=positive(args.max_body_bytes, name=_name("--max-body-bytes")),
        max_send_buffer_bytes=positive(args.max_send_buffer_bytes, name=_name("--max-send-buffer-bytes")),
        resume_max_messages=positive(args.resume_max_messages, name=_name("--resume-max-messages")),
        backend_timeout_secs=positive(args.backend_timeout_secs, name=_name("--backend-timeout-secs"), kind=float),
    )
