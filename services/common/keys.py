"""`chorus keys DIR`: every key the internal traffic needs, one folder per service.

    DIR/broker/curve.key_secret        the broker's CURVE key pair
    DIR/broker/clients/gateway.key     public certificates of the broker's clients, named by role
    DIR/broker/clients/membership.key
    DIR/broker/clients/broker.key      the brokers of a cluster share one key pair and talk to each other
    DIR/gateway/curve.key_secret       a gateway's key pair (every gateway may share it)
    DIR/gateway/broker.key             the broker's public certificate
    DIR/membership/curve.key_secret
    DIR/membership/broker.key

Each service is given its own folder (``--keys-dir DIR/SERVICE``) and nothing
else, so a gateway never holds the broker's secret. New secret files are 0600
and new folders 0700 (a container running as another user needs them made
readable to it, inside a private folder: see README "Deploy"). Keys that exist
are kept, permissions included: running it again only adds what is missing, so
`chorus up` can call it on every start.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import zmq.auth

from .curve import BROKER_PUBLIC, CLIENTS_DIR, OWN_SECRET

__all__ = ["ensure_keys", "CLIENT_ROLES", "add_arguments", "settings_from_args", "run"]

CLIENT_ROLES = ("gateway", "membership")


def ensure_keys(root: Path) -> Path:
    """Create whatever of the layout above is missing under ``root``; returns ``root``."""
    _folder(root)
    broker = _own_pair(root / "broker")
    clients = _folder(root / "broker" / CLIENTS_DIR)
    for role in CLIENT_ROLES:
        public = _own_pair(root / role)
        _copy_public(public, clients / f"{role}.key")
        _copy_public(broker, root / role / BROKER_PUBLIC)
    _copy_public(broker, clients / "broker.key")
    return root


def _folder(path: Path) -> Path:
    if not path.exists():
        path.mkdir(mode=0o700, parents=True)
        os.chmod(path, 0o700)  # whatever the umask
    return path


def _own_pair(folder: Path) -> Path:
    """The folder's key pair (made when missing); the path of its public certificate."""
    _folder(folder)
    stem = OWN_SECRET.removesuffix(".key_secret")
    public, secret = folder / f"{stem}.key", folder / OWN_SECRET
    if not secret.exists():
        zmq.auth.create_certificates(folder, stem)
        os.chmod(secret, 0o600)
    return public


def _copy_public(source: Path, target: Path) -> None:
    if not target.exists() or target.read_bytes() != source.read_bytes():
        shutil.copyfile(source, target)
        os.chmod(target, 0o644)


# `chorus keys DIR` ---------------------------------------------------------------

def add_arguments(parser, env) -> None:
    parser.add_argument("dir", type=Path, help="folder to create the keys in (one subfolder per service)")


def settings_from_args(args, env) -> Path:
    return args.dir.expanduser()


def run(root: Path) -> int:
    ensure_keys(root)
    print(f"keys in {root}: give each service its own folder, e.g. "
          f"`chorus broker --keys-dir {root / 'broker'}`, `chorus webgate --keys-dir {root / 'gateway'}`, "
          f"`chorus membership --keys-dir {root / 'membership'}`")
    return 0
