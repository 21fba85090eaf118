"""Broker settings: flags and environment, read once in the entry point.

Precedence for each value: the flag, else its environment variable, else the
default. For the database: --database-url, else $CHORUS_BROKER_DATABASE_URL,
else $DATABASE_URL, else the SQLite file broker.db in --data-dir
($CHORUS_DATA_DIR, else ~/.local/share/chorus).
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import dataclass

from chorus.common.config import (add_flag, database_env, default_data_dir, parse_host_port, positive,
                                   resolve_database_url)

from chorus.wire.endpoints import (DEFAULT_BROKER_PUB, DEFAULT_BROKER_ROUTER, DEFAULT_MEMBERSHIP_ADDRESS,
                                   DEFAULT_MESSAGES_ADDRESS)
from chorus.wire.limits import DEFAULT_MAX_TEXT_CHARS
from chorus.wire.limits import MAX_HISTORY_PAGE as DEFAULT_MAX_HISTORY_PAGE

from .core import DEFAULT_KEY_RETENTION_SECS

__all__ = ["Settings", "add_arguments", "settings_from_args"]

DEFAULT_ROUTER = DEFAULT_BROKER_ROUTER
DEFAULT_PUB = DEFAULT_BROKER_PUB
DEFAULT_GRPC_LISTEN = DEFAULT_MESSAGES_ADDRESS
DEFAULT_MEMBERSHIP = DEFAULT_MEMBERSHIP_ADDRESS
DEFAULT_GATEWAY_TIMEOUT_SECS = 10.0
DEFAULT_PUB_HWM_MSGS = 100_000
DEFAULT_TICK_SECS = 0.5
DEFAULT_BACKEND_TIMEOUT_SECS = 5.0
DEFAULT_MAX_WORKERS = 16
DEFAULT_GRACE_SECS = 5.0
ENDPOINT_SCHEMES = ("tcp://", "ipc://", "inproc://")
_SQLITE_NAME = "broker"  # -> broker.db in the data directory
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("", "0", "false", "no", "off")


@dataclass(frozen=True, kw_only=True)
class Settings:
    database_url: str
    router_endpoint: str = DEFAULT_ROUTER
    pub_endpoint: str = DEFAULT_PUB
    grpc_listen: str = DEFAULT_GRPC_LISTEN
    membership_address: str = DEFAULT_MEMBERSHIP
    durable_sync: bool = False
    gateway_timeout_secs: float = DEFAULT_GATEWAY_TIMEOUT_SECS
    max_text_chars: int = DEFAULT_MAX_TEXT_CHARS
    max_history_page: int = DEFAULT_MAX_HISTORY_PAGE
    pub_hwm_msgs: int = DEFAULT_PUB_HWM_MSGS
    tick_secs: float = DEFAULT_TICK_SECS
    backend_timeout_secs: float = DEFAULT_BACKEND_TIMEOUT_SECS
    max_workers: int = DEFAULT_MAX_WORKERS
    grace_secs: float = DEFAULT_GRACE_SECS
    key_retention_secs: float = DEFAULT_KEY_RETENTION_SECS


def add_arguments(parser: argparse.ArgumentParser, env: Mapping[str, str]) -> None:
    add_flag(parser, "--router", env=env, var="CHORUS_BROKER_ROUTER", default=DEFAULT_ROUTER,
             help="ZeroMQ endpoint the gateways' DEALERs connect to")
    add_flag(parser, "--pub", env=env, var="CHORUS_BROKER_PUB", default=DEFAULT_PUB,
             help="ZeroMQ endpoint the gateways' SUBs connect to")
    add_flag(parser, "--grpc-listen", env=env, var="CHORUS_BROKER_GRPC_LISTEN", default=DEFAULT_GRPC_LISTEN,
             help="HOST:PORT of the gRPC Messages service for other backends (port 0 picks a free one)")
    add_flag(parser, "--membership", env=env, var="CHORUS_MEMBERSHIP_ADDRESS", default=DEFAULT_MEMBERSHIP,
             help="HOST:PORT of the membership service (the Messages service checks groups exist)")
    add_flag(parser, "--database-url", env=database_env(env, "CHORUS_BROKER_DATABASE_URL"),
             var="CHORUS_BROKER_DATABASE_URL",
             default=None,
             help="sqlite:///PATH or postgresql://...; falls back to $DATABASE_URL, "
                  "then to broker.db in --data-dir")
    add_flag(parser, "--data-dir", env=env, var="CHORUS_DATA_DIR", default=str(default_data_dir(env)),
             help="directory for the SQLite file when no database URL is given")
    parser.add_argument(
        "--durable-sync", action="store_const", const="true",
        default=env.get("CHORUS_BROKER_DURABLE_SYNC", "false"),
        help="SQLite: fsync every commit (synchronous=FULL) so acked messages survive power loss, "
             "not only a crash (env CHORUS_BROKER_DURABLE_SYNC=true; default false)")
    add_flag(parser, "--gateway-timeout-secs", env=env, var="CHORUS_GATEWAY_TIMEOUT_SECS",
             default=DEFAULT_GATEWAY_TIMEOUT_SECS, help="drop a gateway's sessions after this much silence")
    add_flag(parser, "--max-text-chars", env=env, var="CHORUS_MAX_TEXT_CHARS",
             default=DEFAULT_MAX_TEXT_CHARS, help="longest message text accepted")
    add_flag(parser, "--max-history-page", env=env, var="CHORUS_BROKER_MAX_HISTORY_PAGE",
             default=DEFAULT_MAX_HISTORY_PAGE, help="most messages one History page returns")
    add_flag(parser, "--pub-hwm-msgs", env=env, var="CHORUS_BROKER_PUB_HWM",
             default=DEFAULT_PUB_HWM_MSGS, help="messages queued per gateway before it loses some")
    add_flag(parser, "--key-retention-secs", env=env, var="CHORUS_BROKER_KEY_RETENTION_SECS",
             default=DEFAULT_KEY_RETENTION_SECS,
             help="how long a send's idempotency key is remembered (a repeat gets the original ack)")


def settings_from_args(args: argparse.Namespace, env: Mapping[str, str]) -> Settings:
    """Settings from parsed flags; ValueError naming the flag and variable when a value is bad.

    When no database URL is given, the data directory is created for the SQLite file.
    """
    parse_host_port(args.grpc_listen, name="--grpc-listen ($CHORUS_BROKER_GRPC_LISTEN)")
    parse_host_port(args.membership, name="--membership ($CHORUS_MEMBERSHIP_ADDRESS)")
    return Settings(
        router_endpoint=_endpoint(args.router, "--router ($CHORUS_BROKER_ROUTER)"),
        pub_endpoint=_endpoint(args.pub, "--pub ($CHORUS_BROKER_PUB)"),
        grpc_listen=args.grpc_listen,
        membership_address=args.membership,
        database_url=resolve_database_url(args.database_url, args.data_dir, env, _SQLITE_NAME),
        durable_sync=_boolean(args.durable_sync, "--durable-sync ($CHORUS_BROKER_DURABLE_SYNC)"),
        gateway_timeout_secs=positive(args.gateway_timeout_secs, name="--gateway-timeout-secs ($CHORUS_GATEWAY_TIMEOUT_SECS)", kind=float),
        max_text_chars=positive(args.max_text_chars, name="--max-text-chars ($CHORUS_MAX_TEXT_CHARS)"),
        max_history_page=positive(args.max_history_page,
                                  name="--max-history-page ($CHORUS_BROKER_MAX_HISTORY_PAGE)"),
        pub_hwm_msgs=positive(args.pub_hwm_msgs, name="--pub-hwm-msgs ($CHORUS_BROKER_PUB_HWM)"),
        key_retention_secs=positive(args.key_retention_secs, kind=float,
                                    name="--key-retention-secs ($CHORUS_BROKER_KEY_RETENTION_SECS)"),
    )


def _endpoint(value: str, name: str) -> str:
    if not value.startswith(ENDPOINT_SCHEMES):
        raise ValueError(f"{name} must be a ZeroMQ endpoint such as {DEFAULT_ROUTER}, got {value!r}")
    return value


def _boolean(value: str, name: str) -> bool:
    text = value.strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"{name} must be true or false, got {value!r}")
