"""From flags and environment variables to frozen settings: one table per command, read once.

A command's settings are a frozen dataclass. Each field a person may set carries
its row of the table in its annotation: the type (which pydantic converts and
checks), the flag, the environment variable and one line of help::

    token_ttl_secs: Annotated[PositiveInt, Setting(
        "--token-ttl-secs", "CHORUS_TOKEN_TTL_SECS", "how long a login lasts")] = 7 * 24 * 3600

``add_flags(parser, table)`` adds the flags (--help names each variable and default);
``read(table, args, env)`` returns the typed values. Each value comes from its flag,
else from the first of its variables that is set and not empty (the first one also
when it is set but empty), else the field's default. Values that only feed a derived
setting (a data directory that becomes a database URL) are rows of their own,
``Row(name, type, default, Setting(...))``.

Invariants:
- Nothing here reads ``os.environ``: the environment comes in as a mapping
  (``chorus.cli`` reads it once), so tests pass a plain dict.
- Conversion and checks are pydantic's, from the row's type; nothing parses numbers
  or booleans by hand. Ints refuse fractions, floats refuse inf and nan, booleans
  accept only true/false/yes/no/on/off/1/0 (pydantic's set, any case).
- A bad value raises ``SettingsError`` (a ValueError) naming the flag and the
  variable: ``--token-ttl-secs ($CHORUS_TOKEN_TTL_SECS) must be > 0, got '0'``.
  A secret's value is never shown, neither in an error nor in --help.
"""

from __future__ import annotations

import argparse
import dataclasses
import typing
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated, Any

from pydantic import TypeAdapter, ValidationError

__all__ = ["Setting", "Row", "SettingsError", "table", "add_flags", "read", "named"]


class SettingsError(ValueError):
    """A value a person gave (flag or variable) that cannot be used; the message names both."""


@dataclass(frozen=True)
class Setting:
    """Where a value may come from, and what --help says about it.

    ``flag`` may be several spellings (the first is the one errors name), or None for a
    secret that must not appear on a command line (``ps`` shows those): it is then
    named in --help's epilog. ``env`` may be several variables, the first winning.
    ``switch``: the flag takes no value and means true. ``action``: an argparse Action
    that builds the raw value from several flags (their spellings then mean different
    things, as ``--site-issuer`` and ``--site-key-file`` do for one list of sites).
    """

    flag: str | tuple[str, ...] | None
    env: str | tuple[str, ...]
    help: str
    secret: bool = False
    switch: bool = False
    action: type[argparse.Action] | None = None

    @property
    def flags(self) -> tuple[str, ...]:
        return () if self.flag is None else (self.flag,) if isinstance(self.flag, str) else self.flag

    @property
    def variables(self) -> tuple[str, ...]:
        return (self.env,) if isinstance(self.env, str) else self.env

    @property
    def name(self) -> str:
        """How errors name it: ``--flag ($VARIABLE)``, or ``$VARIABLE`` alone."""
        var = f"${self.variables[0]}"
        return f"{self.flags[0]} ({var})" if self.flags else var


@dataclass(frozen=True)
class Row:
    """One settable value: the attribute it fills, its type and default, and its Setting."""

    name: str
    type: Any
    default: Any
    setting: Setting

    @property
    def dest(self) -> str:
        return f"setting_{self.name}"  # argparse's attribute; never clashes with positionals


def table(*sources: type | Row) -> tuple[Row, ...]:
    """The rows of settings dataclasses (their fields annotated with a Setting) and loose Rows."""
    rows: list[Row] = []
    for source in sources:
        rows.extend([source] if isinstance(source, Row) else _rows_of(source))
    return tuple(rows)


@lru_cache(maxsize=None)
def _rows_of(cls: type) -> tuple[Row, ...]:
    hints = typing.get_type_hints(cls, include_extras=True)
    rows = []
    for field in dataclasses.fields(cls):
        hint = hints[field.name]
        settings = [m for m in getattr(hint, "__metadata__", ()) if isinstance(m, Setting)]
        if not settings:
            continue  # derived by the config module, not set by a person
        default = field.default if field.default is not dataclasses.MISSING else None
        rows.append(Row(field.name, _without_settings(hint), default, settings[0]))
    return tuple(rows)


def _without_settings(hint: Any) -> Any:
    metadata = tuple(m for m in hint.__metadata__ if not isinstance(m, Setting))
    return Annotated[(hint.__origin__, *metadata)] if metadata else hint.__origin__


def add_flags(parser: argparse.ArgumentParser, rows: Iterable[Row]) -> None:
    """One flag per row (``None`` when not given, so ``read`` can tell); variables and
    defaults in the help; env-only secrets listed in the epilog."""
    env_only = []
    for row in rows:
        setting = row.setting
        if not setting.flags:
            env_only.append(f"{setting.variables[0]}: {setting.help}")
            continue
        variables = " or ".join(setting.variables)
        default = "not shown" if setting.secret else _shown(row.default)
        help_text = f"{setting.help} (env {variables}; default {default})".replace("%", "%%")
        if setting.switch:
            parser.add_argument(*setting.flags, dest=row.dest, action="store_const", const="true",
                                default=None, help=help_text)
        elif setting.action is not None:
            parser.add_argument(*setting.flags, dest=row.dest, action=setting.action, default=None,
                                help=help_text)
        else:
            parser.add_argument(*setting.flags, dest=row.dest, default=None, help=help_text,
                                metavar=setting.flags[0].lstrip("-").replace("-", "_").upper())
    if env_only:
        parser.epilog = "environment only (a flag would show it in ps): " + "; ".join(env_only)


def _shown(default: Any) -> str:
    if default is None:
        return "none"
    if isinstance(default, bool):
        return str(default).lower()
    if isinstance(default, (tuple, list)):
        return ",".join(map(str, default)) or "none"
    return str(default)


def read(rows: Sequence[Row], args: argparse.Namespace, env: Mapping[str, str]) -> dict[str, Any]:
    """``{row.name: typed value}``; SettingsError for the first bad value, in table order."""
    values = {}
    for row in rows:
        raw, given = _raw(row, args, env)
        if not given:
            values[row.name] = row.default
            continue
        try:
            values[row.name] = _adapter(row.type).validate_python(raw)
        except ValidationError as exc:
            raise SettingsError(named(row.setting.name, _tail(exc, raw, row.setting.secret))) from None
    return values


def _raw(row: Row, args: argparse.Namespace, env: Mapping[str, str]) -> tuple[Any, bool]:
    flagged = getattr(args, row.dest, None)
    if flagged is not None:
        return flagged, True
    variables = row.setting.variables
    for var in variables:
        if env.get(var):
            return env[var], True
    if variables[0] in env:  # set but empty: a value of its own ("none" for some, an error for numbers)
        return env[variables[0]], True
    return None, False


@lru_cache(maxsize=None)
def _adapter(type_: Any) -> TypeAdapter:
    return TypeAdapter(type_)


# pydantic's error types in our words; the value is appended (", got '0'") unless secret.
_SAID = {
    "int_parsing": "must be a number",
    "int_type": "must be a number",
    "int_from_float": "must be a whole number",
    "float_parsing": "must be a number",
    "float_type": "must be a number",
    "finite_number": "must be a finite number",
    "bool_parsing": "must be true or false",
    "bool_type": "must be true or false",
    "greater_than": "must be > {gt:g}",
    "greater_than_equal": "must be >= {ge:g}",
    "less_than": "must be < {lt:g}",
    "less_than_equal": "must be <= {le:g}",
}


def _tail(exc: ValidationError, raw: Any, secret: bool) -> str:
    error = exc.errors(include_url=False)[0]
    if error["type"] == "value_error":  # our own validators word their whole complaint
        return str(error["ctx"]["error"])
    said = _SAID.get(error["type"])
    if said is None:
        said = "is invalid: " + error["msg"][0].lower() + error["msg"][1:]
    else:
        said = said.format(**error.get("ctx", {}))
        if error["type"] == "int_parsing" and _is_number(raw):
            said = "must be a whole number"
    return said if secret else f"{said}, got {raw!r}"


def _is_number(raw: Any) -> bool:
    try:
        float(raw)
    except (TypeError, ValueError):
        return False
    return True


def named(name: str, complaint: str) -> str:
    """``--x ($X) must be ...`` for a rule, ``--x ($X): cannot read ...`` for a fact."""
    return f"{name} {complaint}" if complaint.startswith("must") else f"{name}: {complaint}"
