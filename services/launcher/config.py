"""`chorus up` settings: where the page listens, where the internal services listen, and
how hard to try when a service dies (see chorus.common.settings)."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, Field

from chorus.common.config import (DATA_DIR, OptionalPath, Port, PositiveFloat, PositiveInt, ReadyFile,
                                  default_data_dir, ready_file_setting)
from chorus.common.settings import Row, Setting, add_flags, read, table
from chorus.common.sites import ALLOWED_ORIGINS, SITES, Origins, Sites

__all__ = ["Settings", "add_arguments", "settings_from_args", "PORT_FIELDS"]

Host = Annotated[str, Field(min_length=1)]


def _fixed(port: int) -> int:
    if port == 0:
        raise ValueError("must be a fixed port: membership is told it before the broker starts, got '0'")
    return port


@dataclass(frozen=True, kw_only=True)
class Settings:
    data_dir: Path
    host: Annotated[Host, Setting(
        ("--host", "--public-host"), ("CHORUS_HOST", "CHORUS_PUBLIC_HOST"),
        "address the page (webgate) listens on; 0.0.0.0 shares it on your network")] = "127.0.0.1"
    internal_host: Annotated[Host, Setting(
        "--internal-host", "CHORUS_INTERNAL_HOST",
        "address auth, membership and the broker (ROUTER, PUB, gRPC) listen on; keep it loopback unless "
        "other machines must reach them")] = "127.0.0.1"
    http_port: Annotated[Port, Setting(
        "--http-port", "CHORUS_HTTP_PORT", "port of the page (0: any free one, printed)")] = 8080
    auth_port: Annotated[Port, Setting(
        "--auth-port", "CHORUS_AUTH_PORT", "port of auth's gRPC (0: any, kept across restarts)")] = 50051
    membership_port: Annotated[Port, Setting(
        "--membership-port", "CHORUS_MEMBERSHIP_PORT", "port of membership's gRPC (0: any, kept)")] = 50052
    broker_router_port: Annotated[Port, AfterValidator(_fixed), Setting(
        "--broker-router-port", "CHORUS_BROKER_ROUTER_PORT", "port of the broker's ROUTER (not 0)")] = 5555
    broker_pub_port: Annotated[Port, Setting(
        "--broker-pub-port", "CHORUS_BROKER_PUB_PORT", "port of the broker's PUB (0: any, kept)")] = 5556
    broker_grpc_port: Annotated[Port, Setting(
        "--broker-grpc-port", "CHORUS_BROKER_GRPC_PORT", "port of the broker's Messages gRPC (0: any, kept)",
    )] = 50053
    brokers: Annotated[PositiveInt, Setting(
        "--brokers", "CHORUS_BROKERS",
        "brokers to run as a cluster sharing the groups (more than 1 needs --database-url postgresql://...)",
    )] = 1
    database_url: Annotated[str, Setting(
        "--database-url", "DATABASE_URL",
        "database of every service (default: SQLite files in the data directory)", secret=True,
    )] = ""
    startup_timeout_secs: Annotated[PositiveFloat, Setting(
        "--startup-timeout-secs", "CHORUS_STARTUP_TIMEOUT_SECS", "how long one service may take to start")] = 30.0
    restart_limit: Annotated[PositiveInt, Setting(
        "--restart-limit", "CHORUS_RESTART_LIMIT",
        "restarts of one service within the restart window before chorus up gives up and stops")] = 5
    restart_window_secs: Annotated[PositiveFloat, Setting(
        "--restart-window-secs", "CHORUS_RESTART_WINDOW_SECS",
        "the window of the restart limit; a service up this long is restarted at once when it dies")] = 60.0
    restart_backoff_secs: Annotated[PositiveFloat, Setting(
        "--restart-backoff-secs", "CHORUS_RESTART_BACKOFF_SECS",
        "wait before restarting a service that died soon after starting; doubles each time")] = 0.5
    restart_backoff_max_secs: Annotated[PositiveFloat, Setting(
        "--restart-backoff-max-secs", "CHORUS_RESTART_BACKOFF_MAX_SECS", "the longest such wait")] = 10.0
    stop_grace_secs: Annotated[PositiveFloat, Setting(
        "--stop-grace-secs", "CHORUS_STOP_GRACE_SECS",
        "on Ctrl-C or SIGTERM, time each service has to stop before it is killed")] = 10.0
    # Passed through to webgate (its other site settings reach it through the environment).
    sites: Annotated[Sites, SITES] = ()
    allowed_origins: Annotated[Origins, ALLOWED_ORIGINS] = ()
    ready_file: Annotated[ReadyFile, ready_file_setting("up")] = None
    child_env: dict = field(default_factory=dict, repr=False)  # the environment the services inherit


PORT_FIELDS = ("http_port", "auth_port", "membership_port", "broker_router_port", "broker_pub_port",
               "broker_grpc_port")
_DATA_DIR = Row("data_dir", OptionalPath, None, DATA_DIR)
_TABLE = table(_DATA_DIR, Settings)


def add_arguments(parser: argparse.ArgumentParser, env: Mapping[str, str]) -> None:
    add_flags(parser, _TABLE)


def settings_from_args(args: argparse.Namespace, env: Mapping[str, str]) -> Settings:
    values = read(_TABLE, args, env)
    fixed = [values[name] for name in PORT_FIELDS if values[name]]
    if len(set(fixed)) != len(fixed):
        raise ValueError("every service needs its own port; two of the port flags are equal")
    if values["brokers"] > 1 and not values["database_url"].startswith("postgresql"):
        raise ValueError(f"--brokers {values['brokers']}: a cluster of brokers shares one PostgreSQL database; "
                         "give --database-url postgresql://... (or DATABASE_URL)")
    data_dir = values.pop("data_dir") or default_data_dir(env)
    return Settings(**values, data_dir=data_dir.expanduser(), child_env=dict(env))
