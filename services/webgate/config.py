"""Web gateway settings: flags and environment, read once in the entry point (see chorus.common.settings)."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated

from chorus.common.config import (INSECURE_PLAINTEXT, KEYS_DIR, ConnectEndpoint, EndpointList, HostPort, Networks,
                                  OptionalPath, OptionalPositiveInt, PositiveFloat, PositiveInt, ReadyFile,
                                  parse_host_port, ready_file_setting)
from chorus.common.settings import Row, Setting, add_flags, read, table
from chorus.common.sites import ALLOWED_ORIGINS, SITES, Origins, Sites
from chorus.wire.endpoints import (DEFAULT_AUTH_ADDRESS, DEFAULT_BROKER_PUB, DEFAULT_BROKER_ROUTER,
                                   DEFAULT_MEMBERSHIP_ADDRESS, DEFAULT_WEBGATE_LISTEN)
from chorus.wire.limits import DEFAULT_MAX_TEXT_CHARS

__all__ = ["Settings", "add_arguments", "settings_from_args"]

DEFAULT_LISTEN = DEFAULT_WEBGATE_LISTEN
DEFAULT_AUTH = DEFAULT_AUTH_ADDRESS
DEFAULT_MEMBERSHIP = DEFAULT_MEMBERSHIP_ADDRESS
DEFAULT_ROUTER = DEFAULT_BROKER_ROUTER
DEFAULT_PUB = DEFAULT_BROKER_PUB
DEFAULT_RETRY_SECS = 5.0  # cluster: a send follows its group's move this long


@dataclass(frozen=True, kw_only=True)
class Settings:
    host: str = "127.0.0.1"   # both from --listen
    port: int = 8080
    auth_address: Annotated[HostPort, Setting(
        "--auth", "CHORUS_AUTH_ADDRESS", "auth service gRPC address")] = DEFAULT_AUTH
    membership_address: Annotated[HostPort, Setting(
        "--membership", "CHORUS_MEMBERSHIP_ADDRESS", "membership service gRPC address")] = DEFAULT_MEMBERSHIP
    broker_router: Annotated[ConnectEndpoint, Setting(
        "--broker-router", "CHORUS_BROKER_ROUTER_ADDRESS", "broker ROUTER endpoint to connect to")] = DEFAULT_ROUTER
    broker_pub: Annotated[ConnectEndpoint, Setting(
        "--broker-pub", "CHORUS_BROKER_PUB_ADDRESS", "broker PUB endpoint to connect to")] = DEFAULT_PUB
    broker_seeds: Annotated[EndpointList, Setting(
        "--broker-seeds", "CHORUS_BROKER_SEEDS",
        "a cluster of brokers: comma-separated ROUTER endpoints of some of them; the others are learnt "
        "from these, and --broker-router/--broker-pub are not used. Empty: one broker",
    )] = ()
    broker_retry_secs: Annotated[PositiveFloat, Setting(
        "--broker-retry-secs", "CHORUS_BROKER_RETRY_SECS",
        "cluster: how long a send follows its group to a new broker (a move, a failover) before it is refused",
    )] = DEFAULT_RETRY_SECS
    auth_deadline_secs: Annotated[PositiveFloat, Setting(
        "--auth-deadline-secs", "CHORUS_WS_AUTH_DEADLINE_SECS", "time allowed for the WebSocket auth frame",
    )] = 10.0
    max_text_chars: Annotated[PositiveInt, Setting(
        "--max-text-chars", "CHORUS_MAX_TEXT_CHARS", "longest message text accepted")] = DEFAULT_MAX_TEXT_CHARS
    max_frame_bytes: Annotated[PositiveInt, Setting(  # larger WebSocket frames close the socket (1009)
        "--max-frame-bytes", "CHORUS_WS_MAX_FRAME_BYTES", "largest WebSocket frame accepted")] = 64 * 1024
    max_body_bytes: Annotated[PositiveInt, Setting(  # larger HTTP bodies get 413
        "--max-body-bytes", "CHORUS_HTTP_MAX_BODY_BYTES", "largest HTTP request body accepted")] = 64 * 1024
    max_send_buffer_bytes: Annotated[PositiveInt, Setting(  # a reader this far behind is cut off (1013)
        "--max-send-buffer-bytes", "CHORUS_WS_MAX_SEND_BUFFER_BYTES",
        "unsent bytes after which a slow reader is cut off")] = 1024 * 1024
    backend_timeout_secs: Annotated[PositiveFloat, Setting(
        "--backend-timeout-secs", "CHORUS_BACKEND_TIMEOUT_SECS", "deadline for gRPC and broker requests")] = 5.0
    heartbeat_secs: Annotated[PositiveFloat, Setting(
        "--heartbeat-secs", "CHORUS_WEBGATE_HEARTBEAT_SECS", "time between Hellos to the broker")] = 1.0
    resume_max_messages: Annotated[PositiveInt, Setting(  # more missed in one group -> "reset" instead of replay
        "--resume-max-messages", "CHORUS_RESUME_MAX_MESSAGES",
        "messages replayed per group before a reset instead")] = 200
    ws_messages_per_sec: Annotated[PositiveFloat, Setting(  # more: rate_limited
        "--ws-messages-per-sec", "CHORUS_WS_MESSAGES_PER_SEC",
        "frames a WebSocket may send per second, sustained")] = 20.0
    ws_messages_burst: Annotated[PositiveInt, Setting(
        "--ws-messages-burst", "CHORUS_WS_MESSAGES_BURST", "frames a WebSocket may send at once")] = 50
    login_failures_per_ip: Annotated[PositiveInt, Setting(  # more: 429
        "--login-failures-per-ip", "CHORUS_LOGIN_FAILURES_PER_IP",
        "failed logins from one IP address per window")] = 30
    login_failure_window_secs: Annotated[PositiveFloat, Setting(
        "--login-failure-window-secs", "CHORUS_LOGIN_FAILURE_WINDOW_SECS",
        "the window of the failed-login limits")] = 300.0
    registrations_per_ip: Annotated[PositiveInt, Setting(  # more: 429
        "--registrations-per-ip", "CHORUS_REGISTRATIONS_PER_IP",
        "registrations from one IP address per window")] = 10
    registration_window_secs: Annotated[PositiveFloat, Setting(
        "--registration-window-secs", "CHORUS_REGISTRATION_WINDOW_SECS",
        "the window of the registration limit")] = 3600.0
    # Peers whose X-Forwarded-For names the client (reverse proxies): the per-address login
    # limit then counts the client's address, not the proxy's.
    trusted_proxies: Annotated[Networks, Setting(
        "--trusted-proxies", "CHORUS_TRUSTED_PROXIES",
        "comma-separated addresses or networks of reverse proxies whose X-Forwarded-For is believed",
    )] = ()
    # Connection limits (admission.py; docs/reliability.md, "One address cannot deny service").
    header_timeout_secs: Annotated[PositiveFloat, Setting(  # slower: the connection is cut
        "--header-timeout-secs", "CHORUS_HTTP_HEADER_TIMEOUT_SECS",
        "time a connection has to send a complete request line and headers")] = 10.0
    keepalive_timeout_secs: Annotated[PositiveFloat, Setting(
        "--keepalive-timeout-secs", "CHORUS_HTTP_KEEPALIVE_TIMEOUT_SECS",
        "an idle keep-alive HTTP connection is closed after this")] = 75.0
    max_connections: Annotated[OptionalPositiveInt, Setting(  # more: 503 at once
        "--max-connections", "CHORUS_MAX_CONNECTIONS",
        "open connections (HTTP and WebSocket) served at once; none: the open-files limit minus --reserved-fds",
    )] = None
    reserved_fds: Annotated[PositiveInt, Setting(
        "--reserved-fds", "CHORUS_RESERVED_FDS",
        "open files kept from connections for gRPC, ZeroMQ and files (half of them may answer refusals)",
    )] = 256
    max_connections_per_address: Annotated[PositiveInt, Setting(  # more: 429 at once
        "--max-connections-per-address", "CHORUS_MAX_CONNECTIONS_PER_ADDRESS",
        "open connections from one peer address (trusted proxies are not counted)")] = 128
    max_websockets_per_address: Annotated[PositiveInt, Setting(  # more: 429 before the upgrade
        "--max-websockets-per-address", "CHORUS_MAX_WEBSOCKETS_PER_ADDRESS",
        "open WebSockets from one client address (behind trusted proxies, the forwarded one)")] = 64
    max_sessions_per_account: Annotated[PositiveInt, Setting(  # more: closed with 4008
        "--max-sessions-per-account", "CHORUS_MAX_SESSIONS_PER_ACCOUNT",
        "open WebSocket sessions of one account on this gateway")] = 20
    account_posts_per_sec: Annotated[PositiveFloat, Setting(  # more: rate_limited
        "--account-posts-per-sec", "CHORUS_ACCOUNT_POSTS_PER_SEC",
        "posts one account may make per second, sustained, all its WebSockets on this gateway together",
    )] = 20.0
    account_posts_burst: Annotated[PositiveInt, Setting(
        "--account-posts-burst", "CHORUS_ACCOUNT_POSTS_BURST",
        "posts one account may make at once, all its WebSockets together")] = 50
    # Other websites (docs/protocol.md, "Site tokens"): their signed tokens, their pages' origins.
    sites: Annotated[Sites, SITES] = ()
    site_audience: Annotated[str | None, Setting(
        "--site-audience", "CHORUS_SITE_AUDIENCE",
        "when set, site tokens must carry this audience (aud)")] = None
    site_token_max_lifetime_secs: Annotated[PositiveInt, Setting(  # farther: refused
        "--site-token-max-lifetime-secs", "CHORUS_SITE_TOKEN_MAX_LIFETIME_SECS",
        "longest a site token may still be valid (exp - now) when presented")] = 3600
    site_jwks_cache_secs: Annotated[PositiveFloat, Setting(
        "--site-jwks-cache-secs", "CHORUS_SITE_JWKS_CACHE_SECS",
        "how long a JWKS fetched from a URL is used before it is fetched again")] = 300.0
    allowed_origins: Annotated[Origins, ALLOWED_ORIGINS] = ()
    revocation_poll_secs: Annotated[PositiveFloat, Setting(  # logged-out tokens' sockets close within this
        "--revocation-poll-secs", "CHORUS_REVOCATION_POLL_SECS",
        "how often the gateway asks auth which tokens were logged out, to close their sockets")] = 1.0
    shutdown_grace_secs: Annotated[PositiveFloat, Setting(
        "--shutdown-grace-secs", "CHORUS_WEBGATE_SHUTDOWN_GRACE_SECS",
        "on SIGTERM, time left to requests in flight")] = 5.0
    keys_dir: Annotated[OptionalPath, KEYS_DIR] = None
    insecure_plaintext: Annotated[bool, INSECURE_PLAINTEXT] = False
    ready_file: Annotated[ReadyFile, ready_file_setting("webgate")] = None


_LISTEN = Row("listen", HostPort, DEFAULT_LISTEN, Setting(
    "--listen", "CHORUS_WEBGATE_LISTEN", "HOST:PORT for HTTP and WebSockets (port 0 picks a free one)"))
_TABLE = table(_LISTEN, Settings)


def add_arguments(parser: argparse.ArgumentParser, env: Mapping[str, str]) -> None:
    add_flags(parser, _TABLE)


def settings_from_args(args: argparse.Namespace, env: Mapping[str, str]) -> Settings:
    values = read(_TABLE, args, env)
    host, port = parse_host_port(values.pop("listen"))
    return Settings(host=host, port=port, **values)
