"""Flags and environment -> the membership service's frozen Settings (see chorus.common.settings).

Precedence for each value: the flag, else its environment variable, else the
default. For the database: --database-url, else $CHORUS_MEMBERSHIP_DATABASE_URL,
else $DATABASE_URL, else the SQLite file membership.db in the data directory.

Auth: account ids are checked with the auth service at --auth
($CHORUS_AUTH_ADDRESS, the variable webgate reads too) before a group is
created for one or one joins; each check waits at most --auth-timeout-secs.

Broker: committed joins and leaves are announced to the broker's ROUTER at
--broker-router ($CHORUS_BROKER_ROUTER_ADDRESS, the variable webgate reads
too); "none" or an empty value turns that off (``broker_router`` is None).
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated

from chorus.common.config import (ENDPOINT_OFF, INSECURE_PLAINTEXT, KEYS_DIR, EndpointList, HostPort,
                                  OptionalConnectEndpoint, OptionalPath, PositiveFloat, PositiveInt,
                                  ReadyFile, database_rows, ready_file_setting,
                                  resolve_database_url)
from chorus.common.settings import Setting, add_flags, read, table
from chorus.membership.broker_notifier import DEFAULT_CLOSE_TIMEOUT_SECS, DEFAULT_MAX_QUEUED_CHANGES
from chorus.membership.validation import DEFAULT_MAX_GROUPS_PER_ACCOUNT, DEFAULT_MAX_MEMBERS_PER_GROUP
from chorus.wire.endpoints import DEFAULT_AUTH_ADDRESS, DEFAULT_BROKER_ROUTER, DEFAULT_MEMBERSHIP_ADDRESS

__all__ = [
    "Settings",
    "add_arguments",
    "settings_from_args",
    "DEFAULT_LISTEN",
    "DEFAULT_MAX_WORKERS",
    "DEFAULT_GRACE_SECS",
    "DEFAULT_BROKER_ROUTER",
    "BROKER_DISABLED",
]

DEFAULT_LISTEN = DEFAULT_MEMBERSHIP_ADDRESS
DEFAULT_MAX_WORKERS = 16
DEFAULT_GRACE_SECS = 5.0
DEFAULT_AUTH_TIMEOUT_SECS = 5.0
BROKER_DISABLED = ENDPOINT_OFF


@dataclass(frozen=True, kw_only=True)
class Settings:
    database_url: str
    listen: Annotated[HostPort, Setting(
        "--listen", "CHORUS_MEMBERSHIP_LISTEN", "HOST:PORT for gRPC (port 0 picks a free one)")] = DEFAULT_LISTEN
    max_members_per_group: Annotated[PositiveInt, Setting(
        "--max-members-per-group", "CHORUS_MAX_MEMBERS_PER_GROUP", "members one group may have",
    )] = DEFAULT_MAX_MEMBERS_PER_GROUP
    max_groups_per_account: Annotated[PositiveInt, Setting(
        "--max-groups-per-account", "CHORUS_MAX_GROUPS_PER_ACCOUNT", "groups one account may join",
    )] = DEFAULT_MAX_GROUPS_PER_ACCOUNT
    max_workers: Annotated[PositiveInt, Setting(
        "--max-workers", "CHORUS_MEMBERSHIP_MAX_WORKERS", "gRPC calls served at once")] = DEFAULT_MAX_WORKERS
    grace_secs: Annotated[PositiveFloat, Setting(
        "--grace-secs", "CHORUS_MEMBERSHIP_GRACE_SECS", "on SIGTERM, time left to calls in flight",
    )] = DEFAULT_GRACE_SECS
    # None: do not announce changes to a broker
    broker_router: Annotated[OptionalConnectEndpoint, Setting(
        "--broker-router", "CHORUS_BROKER_ROUTER_ADDRESS",
        f"broker ROUTER endpoint told about joins and leaves; {BROKER_DISABLED!r} or empty: none",
    )] = DEFAULT_BROKER_ROUTER
    broker_seeds: Annotated[EndpointList, Setting(
        "--broker-seeds", "CHORUS_BROKER_SEEDS",
        "a cluster of brokers: comma-separated ROUTER endpoints of some of them; every live broker "
        "(learnt from these) is told about joins and leaves, and --broker-router is not used",
    )] = ()
    broker_max_queued_changes: Annotated[PositiveInt, Setting(
        "--broker-max-queued-changes", "CHORUS_MEMBERSHIP_BROKER_MAX_QUEUED_CHANGES",
        "changes kept for the broker while it is unreachable; more are logged and not announced",
    )] = DEFAULT_MAX_QUEUED_CHANGES
    broker_flush_secs: Annotated[PositiveFloat, Setting(
        "--broker-flush-secs", "CHORUS_MEMBERSHIP_BROKER_FLUSH_SECS",
        "at shutdown, time left to deliver changes the broker has not confirmed",
    )] = DEFAULT_CLOSE_TIMEOUT_SECS
    auth_address: Annotated[HostPort, Setting(
        "--auth", "CHORUS_AUTH_ADDRESS", "HOST:PORT of the auth service, asked whether account ids exist",
    )] = DEFAULT_AUTH_ADDRESS
    auth_timeout_secs: Annotated[PositiveFloat, Setting(
        "--auth-timeout-secs", "CHORUS_MEMBERSHIP_AUTH_TIMEOUT_SECS",
        "deadline for asking auth; past it the call is UNAVAILABLE",
    )] = DEFAULT_AUTH_TIMEOUT_SECS
    keys_dir: Annotated[OptionalPath, KEYS_DIR] = None
    insecure_plaintext: Annotated[bool, INSECURE_PLAINTEXT] = False
    ready_file: Annotated[ReadyFile, ready_file_setting("membership")] = None


_DATABASE = database_rows("membership")
_TABLE = table(*_DATABASE, Settings)


def add_arguments(parser: argparse.ArgumentParser, env: Mapping[str, str]) -> None:
    add_flags(parser, _TABLE)


def settings_from_args(args: argparse.Namespace, env: Mapping[str, str]) -> Settings:
    """Settings from parsed flags; ValueError naming the flag and variable when a value is bad.

    When no database URL is given, the data directory is created for the SQLite file.
    """
    values = read(_TABLE, args, env)
    url, data_dir, password_file = (values.pop(row.name) for row in _DATABASE)
    return Settings(**values, database_url=resolve_database_url(url, data_dir, password_file, env, "membership"))
