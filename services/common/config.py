"""The kinds of values settings hold, and the helpers that derive settings from them.

Types for ``chorus.common.settings`` rows: pydantic converts and checks each one,
and a failing check words its complaint ("must look like HOST:PORT, got 'x'"),
to which the loader adds the flag and variable. Also: addresses (HOST:PORT,
ZeroMQ endpoints), the data directory and the database URL of the embedded default.
"""

from __future__ import annotations

from collections.abc import Mapping
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, Field

from chorus.common.settings import Row, Setting

__all__ = [
    "KEYS_DIR", "INSECURE_PLAINTEXT", "PositiveInt", "PositiveFloat", "OptionalPositiveInt", "Port", "HostPort",
    "BindEndpoint", "ConnectEndpoint", "EndpointList",
    "OptionalConnectEndpoint", "Networks", "OptionalPath", "ReadyFile", "ready_file_setting", "ENDPOINT_SCHEMES", "ENDPOINT_OFF",
    "parse_host_port", "join_host_port", "default_data_dir", "database_rows", "resolve_database_url",
]

ENDPOINT_SCHEMES = ("tcp://", "ipc://", "inproc://")
ENDPOINT_OFF = "none"  # an optional endpoint set to this (or empty) is turned off
_EXAMPLE_ENDPOINT = "tcp://127.0.0.1:5555"


def parse_host_port(value: str) -> tuple[str, int]:
    """``"127.0.0.1:8080"`` -> ``("127.0.0.1", 8080)``, ``"[::1]:0"`` -> ``("::1", 0)``;
    ValueError with a complaint (no name: the caller knows it) otherwise."""
    host, sep, port_text = value.rpartition(":")
    if not sep or not host:
        raise ValueError(f"must look like HOST:PORT, got {value!r}")
    try:
        port = int(port_text)
    except ValueError:
        raise ValueError(f"must be a number, got {port_text!r}") from None
    if not 0 <= port <= 65535:
        raise ValueError(f"port {port} is out of range 0-65535")
    return host.strip("[]"), port


def join_host_port(host: str, port: int) -> str:
    """The inverse of parse_host_port: IPv6 hosts in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _host_port(value: str) -> str:
    parse_host_port(value)
    return value


def _port(value: int) -> int:
    if not 0 <= value <= 65535:
        raise ValueError(f"port {value} is out of range 0-65535")
    return value


def _bind_endpoint(value: str) -> str:
    if not value.startswith(ENDPOINT_SCHEMES):
        raise ValueError(f"must be a ZeroMQ endpoint such as {_EXAMPLE_ENDPOINT}, got {value!r}")
    return value


def _connect_endpoint(value: str) -> str:
    if not value.startswith(ENDPOINT_SCHEMES) or value.endswith(("://", ":0", ":*")):
        raise ValueError(f"must be a ZeroMQ endpoint to connect to, such as {_EXAMPLE_ENDPOINT}, got {value!r}")
    return value


def _optional_endpoint(value: object) -> object:
    if value is None:
        return None
    text = str(value).strip()
    if text.lower() in ("", ENDPOINT_OFF):
        return None
    if not text.startswith(ENDPOINT_SCHEMES) or text.endswith(("://", ":0", ":*")):
        raise ValueError(f"must be a ZeroMQ endpoint to connect to, such as {_EXAMPLE_ENDPOINT}, "
                         f"or {ENDPOINT_OFF!r}; got {value!r}")
    return text


def _endpoint_list(value: object) -> object:
    """Comma-separated endpoints to connect to (a cluster's seeds); empty: none."""
    if not isinstance(value, str):
        return value
    endpoints = tuple(part.strip() for part in value.split(",") if part.strip())
    for endpoint in endpoints:
        _connect_endpoint(endpoint)
    return endpoints


def _networks(value: object) -> object:
    if not isinstance(value, str):
        return value
    try:
        return tuple(ip_network(part.strip(), strict=False) for part in value.split(",") if part.strip())
    except ValueError as exc:
        raise ValueError(str(exc)) from None


def _optional_number(value: object) -> object:
    return None if isinstance(value, str) and value.strip().lower() in ("", "none") else value


def _optional_path(value: object) -> object:
    return None if isinstance(value, str) and not value.strip() else value


def _ready_file(value: Path | None) -> Path | None:
    if value is not None and not value.expanduser().parent.is_dir():
        raise ValueError(f"must be a file in an existing directory, got {str(value)!r}")
    return value


PositiveInt = Annotated[int, Field(gt=0)]
PositiveFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]
OptionalPositiveInt = Annotated[PositiveInt | None, BeforeValidator(_optional_number)]  # "none" or empty: None
Port = Annotated[int, AfterValidator(_port)]
HostPort = Annotated[str, AfterValidator(_host_port)]
BindEndpoint = Annotated[str, AfterValidator(_bind_endpoint)]
ConnectEndpoint = Annotated[str, AfterValidator(_connect_endpoint)]
OptionalConnectEndpoint = Annotated[str | None, BeforeValidator(_optional_endpoint)]
EndpointList = Annotated[tuple[str, ...], BeforeValidator(_endpoint_list)]
Networks = Annotated[tuple[IPv4Network | IPv6Network, ...], BeforeValidator(_networks)]
OptionalPath = Annotated[Path | None, BeforeValidator(_optional_path)]
ReadyFile = Annotated[Path | None, BeforeValidator(_optional_path), AfterValidator(_ready_file)]


def ready_file_setting(service: str) -> Setting:
    """``--ready-file``: where a service (or `chorus up`) writes its readiness object."""
    return Setting("--ready-file", f"CHORUS_{service.upper()}_READY_FILE",
                   "write the readiness object (JSON: the bound addresses) to this file, atomically, "
                   "once serving; the line CHORUS-READY {...} goes to stdout either way")


def default_data_dir(env: Mapping[str, str]) -> Path:
    """Where the embedded default keeps its files: $XDG_DATA_HOME/chorus, else ~/.local/share/chorus."""
    base = env.get("XDG_DATA_HOME") or str(Path(env.get("HOME", "~")).expanduser() / ".local" / "share")
    return Path(base) / "chorus"


DATA_DIR = Setting("--data-dir", "CHORUS_DATA_DIR",
                   "directory for the SQLite files (and `chorus up`'s token key); "
                   "none: $XDG_DATA_HOME/chorus, else ~/.local/share/chorus")
DATABASE_PASSWORD_FILE = Setting(
    "--database-password-file", "CHORUS_DATABASE_PASSWORD_FILE",
    "file holding the password of a PostgreSQL URL (a container secret), kept out of URL and environment")


def database_rows(service: str) -> tuple[Row, ...]:
    """The rows from which ``resolve_database_url`` makes a service's database URL: its own
    variable, then the shared DATABASE_URL; else ``service.db`` in the data directory."""
    url = Setting("--database-url", (f"CHORUS_{service.upper()}_DATABASE_URL", "DATABASE_URL"),
                  f"sqlite:///PATH or postgresql://...; none: {service}.db in --data-dir", secret=True)
    return (Row("database_url", str | None, None, url),
            Row("data_dir", OptionalPath, None, DATA_DIR),
            Row("database_password_file", OptionalPath, None, DATABASE_PASSWORD_FILE))


def resolve_database_url(url: str | None, data_dir: Path | None, password_file: Path | None,
                         env: Mapping[str, str], name: str) -> str:
    """The database to open: ``url``, else ``name.db`` under the data directory (created if
    missing). ``password_file``, when given, supplies the password of a server URL from a
    file (a container secret), so it is in neither URL nor environment."""
    if not url:
        return _sqlite_default(data_dir, env, name)
    if password_file is None:
        return url
    from sqlalchemy.engine import make_url  # here, so config never imports SQLAlchemy eagerly

    try:
        password = Path(password_file).read_text().strip()
    except OSError as exc:
        raise ValueError(f"{DATABASE_PASSWORD_FILE.name}: cannot read {password_file}: {exc.strerror}") from None
    try:
        parsed = make_url(url)
    except Exception:
        return url  # the engine reports a bad URL with its own clear message
    if parsed.get_backend_name() == "sqlite":
        return url
    return parsed.set(password=password).render_as_string(hide_password=False)


def _sqlite_default(data_dir: Path | None, env: Mapping[str, str], name: str) -> str:
    from chorus.common.db import sqlite_url  # here, so config never imports SQLAlchemy eagerly

    path = data_dir.expanduser() if data_dir else default_data_dir(env)
    try:
        return sqlite_url(path, name)
    except OSError as exc:
        raise ValueError(f"{DATA_DIR.name}: cannot create {path}: {exc.strerror}") from None


KEYS_DIR = Setting(
    "--keys-dir", "CHORUS_KEYS_DIR",
    "this service's folder of keys for internal traffic (`chorus keys DIR` makes DIR/SERVICE for each)")
INSECURE_PLAINTEXT = Setting(
    "--insecure-plaintext", "CHORUS_INSECURE_PLAINTEXT",
    "internal traffic without keys: unauthenticated and unencrypted; only where nobody else can reach "
    "the internal ports", switch=True)

