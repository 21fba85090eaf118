"""Flags and environment -> the membership service's frozen Settings.

Precedence for each value: the flag, else its environment variable, else the
default. For the database: --database-url, else $CHORUS_MEMBERSHIP_DATABASE_URL,
else $DATABASE_URL, else the SQLite file membership.db in the data directory.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from chorus.common.config import add_flag, default_data_dir, parse_host_port, positive
from chorus.common.db import sqlite_url
from chorus.membership.validation import DEFAULT_MAX_GROUPS_PER_ACCOUNT, DEFAULT_MAX_MEMBERS_PER_GROUP

__all__ = [
    "Settings",
    "add_arguments",
    "settings_from_args",
    "DEFAULT_LISTEN",
    "DEFAULT_MAX_WORKERS",
    "DEFAULT_GRACE_SECS",
]

DEFAULT_LISTEN = "127.0.0.1:50052"
DEFAULT_MAX_WORKERS = 16
DEFAULT_GRACE_SECS = 5.0
_SQLITE_NAME = "membership"  # -> membership.db in the data directory


@dataclass(frozen=True, kw_only=True)
class Settings:
    database_url: str
    listen: str = DEFAULT_LISTEN
    max_members_per_group: int = DEFAULT_MAX_MEMBERS_PER_GROUP
    max_groups_per_account: int = DEFAULT_MAX_GROUPS_PER_ACCOUNT
    max_workers: int = DEFAULT_MAX_WORKERS
    grace_secs: float = DEFAULT_GRACE_SECS


def add_arguments(parser: argparse.ArgumentParser, env: Mapping[str, str]) -> None:
    add_flag(parser, "--listen", env=env, var="CHORUS_MEMBERSHIP_LISTEN", default=DEFAULT_LISTEN,
             help="HOST:PORT for gRPC (port 0 picks a free one)")
    add_flag(parser, "--database-url", env=_database_env(env), var="CHORUS_MEMBERSHIP_DATABASE_URL",
             default=None,
             help="sqlite:///PATH or postgresql://...; falls back to $DATABASE_URL, "
                  "then to membership.db in --data-dir")
    add_flag(parser, "--data-dir", env=env, var="CHORUS_DATA_DIR", default=str(default_data_dir(env)),
             help="directory for the SQLite file when no database URL is given")
    add_flag(parser, "--max-members-per-group", env=env, var="CHORUS_MAX_MEMBERS_PER_GROUP",
             default=DEFAULT_MAX_MEMBERS_PER_GROUP, help="members one group may have")
    add_flag(parser, "--max-groups-per-account", env=env, var="CHORUS_MAX_GROUPS_PER_ACCOUNT",
             default=DEFAULT_MAX_GROUPS_PER_ACCOUNT, help="groups one account may join")


def settings_from_args(args: argparse.Namespace, env: Mapping[str, str]) -> Settings:
    """Settings from parsed flags; ValueError naming the flag and variable when a value is bad.

    When no database URL is given, the data directory is created for the SQLite file.
    """
    parse_host_port(args.listen, name="--listen ($CHORUS_MEMBERSHIP_LISTEN)")
    return Settings(
        listen=args.listen,
        database_url=args.database_url or _sqlite_default(args.data_dir, env),
        max_members_per_group=positive(
            args.max_members_per_group,
            name="--max-members-per-group ($CHORUS_MAX_MEMBERS_PER_GROUP)",
        ),
        max_groups_per_account=positive(
            args.max_groups_per_account,
            name="--max-groups-per-account ($CHORUS_MAX_GROUPS_PER_ACCOUNT)",
        ),
    )


def _database_env(env: Mapping[str, str]) -> dict[str, str]:
    """The one variable add_flag reads, filled from the service-specific URL, else the shared one.

    Kept out of the flag's displayed default so --help never prints a password.
    """
    url = env.get("CHORUS_MEMBERSHIP_DATABASE_URL") or env.get("DATABASE_URL")
    return {"CHORUS_MEMBERSHIP_DATABASE_URL": url} if url else {}


def _sqlite_default(data_dir: str | None, env: Mapping[str, str]) -> str:
    path = Path(data_dir).expanduser() if data_dir else default_data_dir(env)
    try:
        return sqlite_url(path, _SQLITE_NAME)
    except OSError as exc:
        raise ValueError(f"--data-dir ($CHORUS_DATA_DIR): cannot create {path}: {exc.strerror}") from None
