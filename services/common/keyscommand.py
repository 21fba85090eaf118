"""`chorus keys DIR [--server-name NAME] [--backend NAME --allow PERMISSIONS]`: the command.

What it makes is chorus.common.keys; this module only reads the command line, so
that building the `chorus` parser (every command, a container's health check
included) never loads the X.509 machinery.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .grpcauth import check_backend_name, parse_permissions
from .keysdir import KeysError

__all__ = ["KeysCommand", "add_arguments", "settings_from_args", "run"]


@dataclass(frozen=True)
class KeysCommand:
    root: Path
    server_names: tuple[str, ...] = ()
    backend: str | None = None
    permissions: frozenset[str] = frozenset()


def add_arguments(parser: argparse.ArgumentParser, env: Mapping[str, str]) -> None:
    parser.add_argument("dir", type=Path, help="folder to create the keys in (one subfolder per service)")
    parser.add_argument("--server-name", action="append", default=[], metavar="NAME",
                        help="another DNS name or IP address the gRPC servers are reached at (repeatable), "
                             "besides localhost, 127.0.0.1, ::1 and each service's compose name")
    parser.add_argument("--backend", metavar="NAME",
                        help="issue a client certificate for an outside backend into DIR/backends/NAME")
    parser.add_argument("--allow", metavar="PERMISSIONS",
                        help="with --backend: what it may call, comma-separated SERVICE.METHOD or SERVICE.*, "
                             "e.g. messages.PostMessage,messages.ListMessages")


def settings_from_args(args: argparse.Namespace, env: Mapping[str, str]) -> KeysCommand:
    """The command; ValueError naming the flag when --backend and --allow are not a good pair."""
    if (args.backend is None) != (args.allow is None):
        raise ValueError("--backend NAME and --allow PERMISSIONS go together: a backend's certificate "
                         "names what it may call")
    if args.backend is None:
        return KeysCommand(args.dir.expanduser(), tuple(args.server_name))
    try:
        permissions = parse_permissions(args.allow)
    except ValueError as exc:
        raise ValueError(f"--allow: {exc}") from None
    return KeysCommand(args.dir.expanduser(), tuple(args.server_name), check_backend_name(args.backend),
                       permissions)


def run(command: KeysCommand) -> int:
    from .grpctls import CA_CERT, CLIENT_CERT, CLIENT_KEY
    from .keys import CA_DIR, ensure_keys, issue_backend

    root = command.root
    try:
        ensure_keys(root, server_names=command.server_names)
        if command.backend is not None:
            folder = issue_backend(root, command.backend, command.permissions)
    except KeysError as exc:
        print(f"chorus keys: {exc}", file=sys.stderr, flush=True)
        return 2
    if command.backend is None:
        print(f"keys in {root}: give each service its own folder, e.g. "
              f"`chorus auth --keys-dir {root / 'auth'}`, `chorus membership --keys-dir {root / 'membership'}`, "
              f"`chorus broker --keys-dir {root / 'broker'}`, `chorus webgate --keys-dir {root / 'gateway'}`; "
              f"{root / CA_DIR} holds the CA's key: give it to nobody")
    else:
        print(f"backend {command.backend!r} may call {', '.join(sorted(command.permissions))}; its certificate "
              f"is in {folder} ({CA_CERT}, {CLIENT_CERT}, {CLIENT_KEY}): hand that folder to it, e.g. "
              f"`grpcurl -cacert {CA_CERT} -cert {CLIENT_CERT} -key {CLIENT_KEY} HOST:50053 list`")
    return 0
