"""Flags and environment -> the auth service's frozen Settings (see chorus.common.settings).

Database: --database-url, else $CHORUS_AUTH_DATABASE_URL, else $DATABASE_URL,
else the SQLite file auth.db in the data directory. The token signing key
comes from $CHORUS_TOKEN_KEY or the file named by --token-key-file /
$CHORUS_TOKEN_KEY_FILE (exactly one of them); there is no default key
(`chorus up` generates one). The key itself has no flag: a command line is
visible to every local user in ``ps``.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

from chorus.auth.tokens import MIN_KEY_BYTES
from chorus.common.config import (INSECURE_PLAINTEXT, KEYS_DIR, HostPort, OptionalPath, PositiveFloat, PositiveInt,
                                  ReadyFile, database_rows, ready_file_setting, resolve_database_url)
from chorus.common.ratelimit import Rate
from chorus.common.settings import Row, Setting, add_flags, read, table
from chorus.wire.endpoints import DEFAULT_AUTH_ADDRESS

__all__ = ["Settings", "add_arguments", "settings_from_args", "DEFAULT_LISTEN", "DEFAULT_TOKEN_TTL_SECS"]

DEFAULT_LISTEN = DEFAULT_AUTH_ADDRESS
DEFAULT_TOKEN_TTL_SECS = 7 * 24 * 3600
DEFAULT_MAX_WORKERS = 16
DEFAULT_GRACE_SECS = 5.0
DEFAULT_LOGIN_FAILURES_PER_ACCOUNT = 10  # per window, then Login answers RESOURCE_EXHAUSTED
DEFAULT_LOGIN_FAILURE_WINDOW_SECS = 300.0
DEFAULT_LOGIN_FAILURES_PER_DEVICE = 10  # per window, for a caller with a valid device token
DEFAULT_DEVICE_TOKEN_TTL_SECS = 365 * 24 * 3600


@dataclass(frozen=True, kw_only=True)
class Settings:
    database_url: str
    token_key: bytes = field(repr=False)
    listen: Annotated[HostPort, Setting(
        "--listen", "CHORUS_AUTH_LISTEN", "HOST:PORT for gRPC (port 0 picks a free one)")] = DEFAULT_LISTEN
    token_ttl_secs: Annotated[PositiveInt, Setting(
        "--token-ttl-secs", "CHORUS_TOKEN_TTL_SECS", "how long a login lasts")] = DEFAULT_TOKEN_TTL_SECS
    max_workers: Annotated[PositiveInt, Setting(
        "--max-workers", "CHORUS_AUTH_MAX_WORKERS", "gRPC calls served at once")] = DEFAULT_MAX_WORKERS
    grace_secs: Annotated[PositiveFloat, Setting(
        "--grace-secs", "CHORUS_AUTH_GRACE_SECS", "on SIGTERM, time left to calls in flight")] = DEFAULT_GRACE_SECS
    login_failures_per_account: Annotated[PositiveInt, Setting(
        "--login-failures-per-account", "CHORUS_LOGIN_FAILURES_PER_ACCOUNT",
        "failed logins to one account per window before Login refuses even the right password",
    )] = DEFAULT_LOGIN_FAILURES_PER_ACCOUNT
    login_failure_window_secs: Annotated[PositiveFloat, Setting(
        "--login-failure-window-secs", "CHORUS_LOGIN_FAILURE_WINDOW_SECS", "the window of the failed-login limits",
    )] = DEFAULT_LOGIN_FAILURE_WINDOW_SECS
    login_failures_per_device: Annotated[PositiveInt, Setting(
        "--login-failures-per-device", "CHORUS_LOGIN_FAILURES_PER_DEVICE",
        "failed logins per window from a device that logged in as that username before "
        "(it presents a device token); these do not count against the account",
    )] = DEFAULT_LOGIN_FAILURES_PER_DEVICE
    device_token_ttl_secs: Annotated[PositiveInt, Setting(
        "--device-token-ttl-secs", "CHORUS_DEVICE_TOKEN_TTL_SECS",
        "how long a device stays known after a login (the gateway's device cookie)",
    )] = DEFAULT_DEVICE_TOKEN_TTL_SECS
    keys_dir: Annotated[OptionalPath, KEYS_DIR] = None
    insecure_plaintext: Annotated[bool, INSECURE_PLAINTEXT] = False
    ready_file: Annotated[ReadyFile, ready_file_setting("auth")] = None

    @property
    def login_failures(self) -> Rate:
        return Rate.per_window(self.login_failures_per_account, self.login_failure_window_secs)

    @property
    def device_login_failures(self) -> Rate:
        return Rate.per_window(self.login_failures_per_device, self.login_failure_window_secs)


_TOKEN_KEY = Row("token_key_text", str | None, None, Setting(
    None, "CHORUS_TOKEN_KEY", f"the token signing key itself (at least {MIN_KEY_BYTES} bytes)", secret=True))
_TOKEN_KEY_FILE = Row("token_key_file", OptionalPath, None, Setting(
    "--token-key-file", "CHORUS_TOKEN_KEY_FILE", "file holding the token signing key (or set CHORUS_TOKEN_KEY)"))
_INPUTS = (*database_rows("auth"), _TOKEN_KEY_FILE, _TOKEN_KEY)
_TABLE = table(*_INPUTS, Settings)


def add_arguments(parser: argparse.ArgumentParser, env: Mapping[str, str]) -> None:
    add_flags(parser, _TABLE)


def settings_from_args(args: argparse.Namespace, env: Mapping[str, str]) -> Settings:
    values = read(_TABLE, args, env)
    given = {row.name: values.pop(row.name) for row in _INPUTS}
    return Settings(
        **values,
        database_url=resolve_database_url(given["database_url"], given["data_dir"],
                                          given["database_password_file"], env, "auth"),
        token_key=_token_key(given["token_key_text"], given["token_key_file"]),
    )


def _token_key(text: str | None, key_file: Path | None) -> bytes:
    if text and key_file:
        # Refused rather than ranked: silently signing with the other key would log everyone out.
        raise ValueError("two token signing keys: CHORUS_TOKEN_KEY and a key file "
                         "(CHORUS_TOKEN_KEY_FILE / --token-key-file); set only one")
    if text:
        key = text.encode()
        source = "CHORUS_TOKEN_KEY"
    elif key_file:
        try:
            key = key_file.expanduser().read_bytes().strip()
        except OSError as exc:
            raise ValueError(f"cannot read the token key file {key_file}: {exc.strerror}") from None
        source = f"the token key file {key_file}"
    else:
        raise ValueError(f"no token signing key: set CHORUS_TOKEN_KEY (at least {MIN_KEY_BYTES} bytes) "
                         "or CHORUS_TOKEN_KEY_FILE / --token-key-file")
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(f"the token signing key in {source} is {len(key)} bytes; it must be at least "
                         f"{MIN_KEY_BYTES}")
    return key
