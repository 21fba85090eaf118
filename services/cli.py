"""The `chorus` command: run one service, or all of them (`chorus up`).

This is the only module that reads the environment. Each subcommand's config
module adds its flags (from its settings table, chorus.common.settings) and
turns the parsed flags and this environment into a frozen settings object:
each value from its flag, else its variable (both named in --help), else the
default. A bad value exits 2 with a message naming the flag and the variable.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Mapping, Sequence

__all__ = ["main"]

# subcommand -> (module with add_arguments/settings_from_args, module with run, help)
SUBCOMMANDS: dict[str, tuple[str, str, str]] = {
    "up": ("chorus.launcher.config", "chorus.launcher.up",
           "run every service, restarted when one dies (embedded default, SQLite); only the page on --host"),
    "auth": ("chorus.auth.config", "chorus.auth.main", "accounts, passwords and tokens (gRPC)"),
    "membership": ("chorus.membership.config", "chorus.membership.main", "groups and members (gRPC)"),
    "broker": ("chorus.broker.config", "chorus.broker.main", "ZeroMQ message broker"),
    "webgate": ("chorus.webgate.config", "chorus.webgate.main", "web page, HTTP API and WebSockets"),
    "keys": ("chorus.common.keyscommand", "chorus.common.keyscommand",
             "make (or complete) the keys that authenticate and encrypt internal traffic"),
    "health": ("chorus.healthcheck", "chorus.healthcheck", "ask whether a service is up (container health checks)"),
}


def build_parser(env: Mapping[str, str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="chorus", description="Chorus real-time group messaging")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (config_module, _, help_text) in SUBCOMMANDS.items():
        sub = subparsers.add_parser(name, help=help_text, description=help_text)
        importlib.import_module(config_module).add_arguments(sub, env)
    return parser


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    env = dict(os.environ) if env is None else env
    parser = build_parser(env)
    args = parser.parse_args(argv)
    config_module, run_module, _ = SUBCOMMANDS[args.command]
    try:
        settings = importlib.import_module(config_module).settings_from_args(args, env)
    except ValueError as exc:
        parser.error(f"{args.command}: {exc}")
    return importlib.import_module(run_module).run(settings)


if __name__ == "__main__":
    sys.exit(main())
