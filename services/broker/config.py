"""Broker settings: flags and environment, read once in the entry point (see chorus.common.settings).

Precedence for each value: the flag, else its environment variable, else the
default. For the database: --database-url, else $CHORUS_BROKER_DATABASE_URL,
else $DATABASE_URL, else the SQLite file broker.db in --data-dir
($CHORUS_DATA_DIR, else ~/.local/share/chorus).
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated

from pydantic import AfterValidator, Field

from chorus.common.config import (INSECURE_PLAINTEXT, KEYS_DIR, BindEndpoint, HostPort, OptionalPath,
                                  PositiveFloat, PositiveInt, ReadyFile, database_rows, ready_file_setting,
                                  resolve_database_url)
from chorus.common.settings import Setting, add_flags, read, table
from chorus.wire.endpoints import (DEFAULT_BROKER_PUB, DEFAULT_BROKER_ROUTER, DEFAULT_MEMBERSHIP_ADDRESS,
                                   DEFAULT_MESSAGES_ADDRESS)
from chorus.wire.limits import DEFAULT_MAX_TEXT_CHARS, MAX_ID_CHARS
from chorus.wire.limits import MAX_HISTORY_PAGE as DEFAULT_MAX_HISTORY_PAGE

from .clustering import DEFAULT_LEASE_SECS, DEFAULT_RENEW_SECS
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
DEFAULT_HAND_OVER_SECS = 10.0
_SQLITE_NAME = "broker"  # -> broker.db in the data directory


ClusterNodeName = Annotated[str, AfterValidator(lambda v: _cluster_node(v))]
NonNegativeFloat = Annotated[float, Field(ge=0, allow_inf_nan=False)]


@dataclass(frozen=True, kw_only=True)
class Settings:
    database_url: str
    router_endpoint: Annotated[BindEndpoint, Setting(
        "--router", "CHORUS_BROKER_ROUTER", "ZeroMQ endpoint the gateways' DEALERs connect to (port 0: any)",
    )] = DEFAULT_ROUTER
    pub_endpoint: Annotated[BindEndpoint, Setting(
        "--pub", "CHORUS_BROKER_PUB", "ZeroMQ endpoint the gateways' SUBs connect to (port 0: any)",
    )] = DEFAULT_PUB
    grpc_listen: Annotated[HostPort, Setting(
        "--grpc-listen", "CHORUS_BROKER_GRPC_LISTEN",
        "HOST:PORT of the gRPC Messages service for other backends (port 0 picks a free one)",
    )] = DEFAULT_GRPC_LISTEN
    membership_address: Annotated[HostPort, Setting(
        "--membership", "CHORUS_MEMBERSHIP_ADDRESS",
        "HOST:PORT of the membership service (the Messages service checks groups exist)",
    )] = DEFAULT_MEMBERSHIP
    durable_sync: Annotated[bool, Setting(
        "--durable-sync", "CHORUS_BROKER_DURABLE_SYNC",
        "SQLite: fsync every commit (synchronous=FULL) so acked messages survive power loss, not only a crash",
        switch=True,
    )] = False
    gateway_timeout_secs: Annotated[PositiveFloat, Setting(
        "--gateway-timeout-secs", "CHORUS_GATEWAY_TIMEOUT_SECS", "drop a gateway's sessions after this much silence",
    )] = DEFAULT_GATEWAY_TIMEOUT_SECS
    max_text_chars: Annotated[PositiveInt, Setting(
        "--max-text-chars", "CHORUS_MAX_TEXT_CHARS", "longest message text accepted")] = DEFAULT_MAX_TEXT_CHARS
    max_history_page: Annotated[PositiveInt, Setting(
        "--max-history-page", "CHORUS_BROKER_MAX_HISTORY_PAGE", "most messages one History page returns",
    )] = DEFAULT_MAX_HISTORY_PAGE
    pub_hwm_msgs: Annotated[PositiveInt, Setting(
        "--pub-hwm-msgs", "CHORUS_BROKER_PUB_HWM", "messages queued per gateway before it loses some",
    )] = DEFAULT_PUB_HWM_MSGS
    tick_secs: Annotated[PositiveFloat, Setting(
        "--tick-secs", "CHORUS_BROKER_TICK_SECS", "longest wait of the loop between liveness checks",
    )] = DEFAULT_TICK_SECS
    backend_timeout_secs: Annotated[PositiveFloat, Setting(
        "--backend-timeout-secs", "CHORUS_BACKEND_TIMEOUT_SECS",
        "deadline of the Messages service's requests to the broker loop and to membership",
    )] = DEFAULT_BACKEND_TIMEOUT_SECS
    max_workers: Annotated[PositiveInt, Setting(
        "--max-workers", "CHORUS_BROKER_MAX_WORKERS", "Messages gRPC calls served at once")] = DEFAULT_MAX_WORKERS
    grace_secs: Annotated[PositiveFloat, Setting(
        "--grace-secs", "CHORUS_BROKER_GRACE_SECS", "on SIGTERM, time left to gRPC calls in flight",
    )] = DEFAULT_GRACE_SECS
    key_retention_secs: Annotated[PositiveFloat, Setting(
        "--key-retention-secs", "CHORUS_BROKER_KEY_RETENTION_SECS",
        "how long a send's idempotency key is remembered (a repeat gets the original ack)",
    )] = DEFAULT_KEY_RETENTION_SECS
    cluster_node: Annotated[ClusterNodeName, Setting(
        "--cluster-node", "CHORUS_BROKER_CLUSTER_NODE",
        "join a cluster of brokers sharing the PostgreSQL database under this name (stable across "
        "restarts, unique in the cluster); empty: a lone broker that owns every group",
    )] = ""
    advertise_host: Annotated[str, Setting(
        "--advertise-host", "CHORUS_BROKER_ADVERTISE_HOST",
        "cluster: the host other services reach this broker at (default: the host it binds, "
        "or this machine's name when it binds every interface)",
    )] = ""
    lease_secs: Annotated[PositiveFloat, Setting(
        "--lease-secs", "CHORUS_BROKER_LEASE_SECS",
        "cluster: a broker that has not renewed its lease for this long (paused, cut off) loses its groups",
    )] = DEFAULT_LEASE_SECS
    lease_renew_secs: Annotated[PositiveFloat, Setting(
        "--lease-renew-secs", "CHORUS_BROKER_LEASE_RENEW_SECS",
        "cluster: how often the lease is renewed and the live brokers re-read (a killed broker's "
        "groups move within about this long)",
    )] = DEFAULT_RENEW_SECS
    hand_over_secs: Annotated[NonNegativeFloat, Setting(
        "--hand-over-secs", "CHORUS_BROKER_HAND_OVER_SECS",
        "cluster: on SIGTERM, after handing the groups over, keep redirecting requests until none "
        "came for a second, at most this long",
    )] = DEFAULT_HAND_OVER_SECS
    keys_dir: Annotated[OptionalPath, KEYS_DIR] = None
    insecure_plaintext: Annotated[bool, INSECURE_PLAINTEXT] = False
    ready_file: Annotated[ReadyFile, ready_file_setting("broker")] = None


def _cluster_node(value: str) -> str:
    value = value.strip()
    if len(value) > MAX_ID_CHARS or (value and not all(c.isalnum() or c in "-_." for c in value)):
        raise ValueError(f"a node name is at most {MAX_ID_CHARS} letters, digits, '-', '_' or '.'; got {value!r}")
    return value


_DATABASE = database_rows(_SQLITE_NAME)
_TABLE = table(*_DATABASE, Settings)


def add_arguments(parser: argparse.ArgumentParser, env: Mapping[str, str]) -> None:
    add_flags(parser, _TABLE)


def settings_from_args(args: argparse.Namespace, env: Mapping[str, str]) -> Settings:
    """Settings from parsed flags; ValueError naming the flag and variable when a value is bad.

    When no database URL is given, the data directory is created for the SQLite file.
    """
    values = read(_TABLE, args, env)
    url, data_dir, password_file = (values.pop(row.name) for row in _DATABASE)
    if values["lease_renew_secs"] >= values["lease_secs"]:
        raise ValueError(f"--lease-renew-secs ({values['lease_renew_secs']}) must be shorter than "
                         f"--lease-secs ({values['lease_secs']})")
    return Settings(**values, database_url=resolve_database_url(url, data_dir, password_file, env, _SQLITE_NAME))
