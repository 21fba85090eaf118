"""Flags and environment -> the membership service's frozen Settings.

Precedence for each value: the flag, else its environment variable, else the
default. For the database: --database-url, else $CHORUS_MEMBERSHIP_DATABASE_URL,
else $DATABASE_URL, else the SQLite file membership.db in the data directory.

Broker: committed joins and leaves are announced to the broker's ROUTER at
--broker-router ($CHORUS_BROKER_ROUTER_ADDRESS, the variable webgate reads
too); "none" or an empty value turns that off (``broker_router`` is None).
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import dataclass

from chorus.common.config import (add_flag, database_env, default_data_dir, parse_host_port, positive,
                                   resolve_database_url)
from chorus.membership.broker_notifier import DEFAULT_CLOSE_TIMEOUT_SECS, DEFAULT_MAX_QUEUED_CHANGES
from chorus.membership.validation import DEFAULT_MAX_GROUPS_PER_ACCOUNT, DEFAULT_MAX_MEMBERS_PER_GROUP
from chorus.wire.endpoints import DEFAULT_BROKER_ROUTER, DEFAULT_MEMBERSHIP_ADDRESS

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
BROKER_DISABLED = "none"
_ENDPOINT_SCHEMES = ("tcp://", "ipc://", "inproc://")
_SQLITE_NAME = "membership"  # -> membership.db in the data directory


@dataclass(frozen=True, kw_only=True)
class Settings:
    database_url: str
    listen: str = DEFAULT_LISTEN
    max_members_per_group: int = DEFAULT_MAX_MEMBERS_PER_GROUP
    max_groups_per_account: int = DEFAULT_MAX_GROUPS_PER_ACCOUNT
    max_workers: int = DEFAULT_MAX_WORKERS
    grace_secs: float = DEFAULT_GRACE_SECS
    broker_router: str | None = DEFAULT_BROKER_ROUTER  # None: do not announce changes to a broker
    broker_max_queued_changes: int = DEFAULT_MAX_QUEUED_CHANGES
    broker_flush_secs: float = DEFAULT_CLOSE_TIMEOUT_SECS  # at shutdown, for changes not yet confirmed


def add_arguments(parser: argparse.ArgumentParser, env: Mapping[str, str]) -> None:
    add_flag(parser, "--listen", env=env, var="CHORUS_MEMBERSHIP_LISTEN", default=DEFAULT_LISTEN,
             help="HOST:PORT for gRPC (port 0 picks a free one)")
    add_flag(parser, "--database-url", env=database_env(env, "CHORUS_MEMBERSHIP_DATABASE_URL"),
             var="CHORUS_MEMBERSHIP_DATABASE_URL",
             default=None,
             help="sqlite:///PATH or postgresql://...; falls back to $DATABASE_URL, "
                  "then to membership.db in --data-dir")
    add_flag(parser, "--data-dir", env=env, var="CHORUS_DATA_DIR", default=str(default_data_dir(env)),
             help="directory for the SQLite file when no database URL is given")
    add_flag(parser, "--max-members-per-group", env=env, var="CHORUS_MAX_MEMBERS_PER_GROUP",
             default=DEFAULT_MAX_MEMBERS_PER_GROUP, help="members one group may have")
    add_flag(parser, "--max-groups-per-account", env=env, var="CHORUS_MAX_GROUPS_PER_ACCOUNT",
             default=DEFAULT_MAX_GROUPS_PER_ACCOUNT, help="groups one account may join")
    add_flag(parser, "--broker-router", env=env, var="CHORUS_BROKER_ROUTER_ADDRESS",
             default=DEFAULT_BROKER_ROUTER,
             help=f"broker ROUTER endpoint told about joins and leaves; {BROKER_DISABLED!r} or empty: none")
    add_flag(parser, "--broker-max-queued-changes", env=env, var="CHORUS_MEMBERSHIP_BROKER_MAX_QUEUED_CHANGES",
             default=DEFAULT_MAX_QUEUED_CHANGES,
             help="changes kept for the broker while it is unreachable; more are logged and not announced")


def settings_from_args(args: argparse.Namespace, env: Mapping[str, str]) -> Settings:
    """Settings from parsed flags; ValueError naming the flag and variable when a value is bad.

    When no database URL is given, the data directory is created for the SQLite file.
    """
    parse_host_port(args.listen, name="--listen ($CHORUS_MEMBERSHIP_LISTEN)")
    return Settings(
        listen=args.listen,
        database_url=resolve_database_url(args.database_url, args.data_dir, env, _SQLITE_NAME),
        max_members_per_group=positive(
            args.max_members_per_group,
            name="--max-members-per-group ($CHORUS_MAX_MEMBERS_PER_GROUP)",
        ),
        max_groups_per_account=positive(
            args.max_groups_per_account,
            name="--max-groups-per-account ($CHORUS_MAX_GROUPS_PER_ACCOUNT)",
        ),
        broker_router=_broker_router(args.broker_router),
        broker_max_queued_changes=positive(
            args.broker_max_queued_changes,
            name="--broker-max-queued-changes ($CHORUS_MEMBERSHIP_BROKER_MAX_QUEUED_CHANGES)",
        ),
    )


def _broker_router(value: str | None) -> str | None:
    """The endpoint to notify, or None for "none" / empty."""
    value = (value or "").strip()
    if not value or value.lower() == BROKER_DISABLED:
        return None
    if not value.startswith(_ENDPOINT_SCHEMES) or value.endswith(("://", ":0", ":*")):
        raise ValueError(f"--broker-router ($CHORUS_BROKER_ROUTER_ADDRESS) must be a ZeroMQ endpoint to "
                         f"connect to, such as {DEFAULT_BROKER_ROUTER}, or {BROKER_DISABLED!r}; got {value!r}")
    return value
