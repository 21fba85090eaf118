"""Helpers for the services' config modules: flags whose defaults come from the environment.

Settings objects themselves live in each service's config.py (frozen
dataclasses, units in the names); these helpers only keep flag parsing and
validation uniform, with errors that name the flag and the variable.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path

__all__ = ["add_flag", "parse_host_port", "default_data_dir", "positive", "resolve_database_url"]


def add_flag(
    parser: argparse.ArgumentParser,
    flag: str,
    *,
    env: Mapping[str, str],
    var: str,
    default: str | int | float | None,
    help: str,
) -> None:
    """Add ``flag`` whose default is ``$var`` when set, else ``default``; values stay strings
    until the config module converts them, so a bad environment value gets the same
    clear error as a bad flag."""
    parser.add_argument(
        flag,
        default=env.get(var, None if default is None else str(default)),
        help=f"{help} (env {var}; default {default})",
    )


def parse_host_port(value: str, *, name: str) -> tuple[str, int]:
    """``"127.0.0.1:8080"`` -> ``("127.0.0.1", 8080)``; ValueError naming ``name`` otherwise."""
    host, sep, port_text = value.rpartition(":")
    if not sep or not host:
        raise ValueError(f"{name} must look like HOST:PORT, got {value!r}")
    port = positive(port_text, name=name, allow_zero=True)
    if port > 65535:
        raise ValueError(f"{name}: port {port} is out of range 0-65535")
    return host.strip("[]"), port


def positive(value: str | int | float, *, name: str, allow_zero: bool = False, kind=int):
    """``value`` converted with ``kind`` and checked > 0 (or >= 0); ValueError naming ``name``."""
    try:
        number = kind(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if number < 0 or (number == 0 and not allow_zero):
        raise ValueError(f"{name} must be {'>= 0' if allow_zero else '> 0'}, got {value!r}")
    return number


def default_data_dir(env: Mapping[str, str]) -> Path:
    """Where the embedded default keeps its files: $CHORUS_DATA_DIR, else ~/.local/share/chorus."""
    if env.get("CHORUS_DATA_DIR"):
        return Path(env["CHORUS_DATA_DIR"]).expanduser()
    base = env.get("XDG_DATA_HOME") or str(Path(env.get("HOME", "~")).expanduser() / ".local" / "share")
    return Path(base) / "chorus"


def database_env(env: Mapping[str, str], var: str) -> dict[str, str]:
    """``{var: url}`` from ``$var``, else ``$DATABASE_URL``: the one variable the
    --database-url flag reads. Kept out of the displayed default, so --help
    never prints a password."""
    url = env.get(var) or env.get("DATABASE_URL")
    return {var: url} if url else {}


def resolve_database_url(url: str | None, data_dir: str | None, env: Mapping[str, str],
                         name: str) -> str:
    """The database to open: ``url`` (from --database-url or the environment), else ``name.db``
    under the data directory. $CHORUS_DATABASE_PASSWORD_FILE, when set, supplies the password
    of a server URL from a file (a container secret), so it is in neither URL nor environment."""
    if not url:
        return sqlite_default(data_dir, env, name)
    password_file = env.get("CHORUS_DATABASE_PASSWORD_FILE")
    if not password_file:
        return url
    from sqlalchemy.engine import make_url  # here, so config never imports SQLAlchemy eagerly

    try:
        password = Path(password_file).read_text().strip()
    except OSError as exc:
        raise ValueError(f"$CHORUS_DATABASE_PASSWORD_FILE: cannot read {password_file}: {exc.strerror}") from None
    try:
        parsed = make_url(url)
    except Exception:
        return url  # the engine reports a bad URL with its own clear message
    if parsed.get_backend_name() == "sqlite":
        return url
    return parsed.set(password=password).render_as_string(hide_password=False)


def sqlite_default(data_dir: str | None, env: Mapping[str, str], name: str) -> str:
    """The SQLite URL of ``name.db`` in the data directory (created if missing)."""
    from chorus.common.db import sqlite_url  # here, so config never imports SQLAlchemy eagerly

    path = Path(data_dir).expanduser() if data_dir else default_data_dir(env)
    try:
        return sqlite_url(path, name)
    except OSError as exc:
        raise ValueError(f"--data-dir ($CHORUS_DATA_DIR): cannot create {path}: {exc.strerror}") from None
