"""Flags and environment -> the auth service's frozen Settings.

Database: --database-url, else $CHORUS_AUTH_DATABASE_URL, else $DATABASE_URL,
else the SQLite file auth.db in the data directory. The token signing key
comes from $CHORUS_TOKEN_KEY or the file named by --token-key-file /
$CHORUS_TOKEN_KEY_FILE (exactly one of them); there is no default key
(`chorus up` generates one).
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from chorus.auth.tokens import MIN_KEY_BYTES
from chorus.common.ratelimit import Rate
from chorus.wire.endpoints import DEFAULT_AUTH_ADDRESS
from chorus.common.config import (add_flag, database_env, default_data_dir, parse_host_port, positive,
                                   resolve_database_url)

__all__ = ["Settings", "add_arguments", "settings_from_args", "DEFAULT_LISTEN", "DEFAULT_TOKEN_TTL_SECS"]

DEFAULT_LISTEN = DEFAULT_AUTH_ADDRESS
DEFAULT_TOKEN_TTL_SECS = 7 * 24 * 3600
DEFAULT_MAX_WORKERS = 16
DEFAULT_GRACE_SECS = 5.0
DEFAULT_LOGIN_FAILURES_PER_ACCOUNT = 10  # per window, then Login answers RESOURCE_EXHAUSTED
DEFAULT_LOGIN_FAILURE_WINDOW_SECS = 300.0


@dataclass(frozen=True, kw_only=True)
class Settings:
    database_url: str
    token_key: bytes = field(repr=False)
    listen: str = DEFAULT_LISTEN
    token_ttl_secs: int = DEFAULT_TOKEN_TTL_SECS
    max_workers: int = DEFAULT_MAX_WORKERS
    grace_secs: float = DEFAULT_GRACE_SECS
    login_failures_per_account: int = DEFAULT_LOGIN_FAILURES_PER_ACCOUNT
    login_failure_window_secs: float = DEFAULT_LOGIN_FAILURE_WINDOW_SECS

    @property
    def login_failures(self) -> Rate:
        return Rate.per_window(self.login_failures_per_account, self.login_failure_window_secs)


def add_arguments(parser: argparse.ArgumentParser, env: Mapping[str, str]) -> None:
    add_flag(parser, "--listen", env=env, var="CHORUS_AUTH_LISTEN", default=DEFAULT_LISTEN,
             help="HOST:PORT for gRPC (port 0 picks a free one)")
    add_flag(parser, "--database-url", env=database_env(env, "CHORUS_AUTH_DATABASE_URL"),
             var="CHORUS_AUTH_DATABASE_URL", default=None,
             help="sqlite:///PATH or postgresql://...; falls back to $DATABASE_URL, then auth.db in --data-dir")
    add_flag(parser, "--data-dir", env=env, var="CHORUS_DATA_DIR", default=str(default_data_dir(env)),
             help="directory for the SQLite file when no database URL is given")
    add_flag(parser, "--token-key-file", env=env, var="CHORUS_TOKEN_KEY_FILE", default=None,
             help="file holding the token signing key (or set CHORUS_TOKEN_KEY itself)")
    add_flag(parser, "--token-ttl-secs", env=env, var="CHORUS_TOKEN_TTL_SECS", default=DEFAULT_TOKEN_TTL_SECS,
             help="how long a login lasts")
    add_flag(parser, "--login-failures-per-account", env=env, var="CHORUS_LOGIN_FAILURES_PER_ACCOUNT",
             default=DEFAULT_LOGIN_FAILURES_PER_ACCOUNT,
             help="failed logins to one account per window before Login refuses even the right password")
    add_flag(parser, "--login-failure-window-secs", env=env, var="CHORUS_LOGIN_FAILURE_WINDOW_SECS",
             default=DEFAULT_LOGIN_FAILURE_WINDOW_SECS, help="the window of the failed-login limit")


def settings_from_args(args: argparse.Namespace, env: Mapping[str, str]) -> Settings:
    parse_host_port(args.listen, name="--listen ($CHORUS_AUTH_LISTEN)")
    return Settings(
        listen=args.listen,
        database_url=resolve_database_url(args.database_url, args.data_dir, env, "auth"),
        token_key=_token_key(args.token_key_file, env),
        token_ttl_secs=positive(args.token_ttl_secs, name="--token-ttl-secs ($CHORUS_TOKEN_TTL_SECS)"),
        login_failures_per_account=positive(
            args.login_failures_per_account,
            name="--login-failures-per-account ($CHORUS_LOGIN_FAILURES_PER_ACCOUNT)"),
        login_failure_window_secs=positive(
            args.login_failure_window_secs,
            name="--login-failure-window-secs ($CHORUS_LOGIN_FAILURE_WINDOW_SECS)", kind=float),
    )


def _token_key(key_file: str | None, env: Mapping[str, str]) -> bytes:
    if env.get("CHORUS_TOKEN_KEY") and key_file:
        # Refused rather than ranked: silently signing with the other key would log everyone out.
        raise ValueError("two token signing keys: CHORUS_TOKEN_KEY and a key file "
                         "(CHORUS_TOKEN_KEY_FILE / --token-key-file); set only one")
    if env.get("CHORUS_TOKEN_KEY"):
        key = env["CHORUS_TOKEN_KEY"].encode()
        source = "CHORUS_TOKEN_KEY"
    elif key_file:
        try:
            key = Path(key_file).expanduser().read_bytes().strip()
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
