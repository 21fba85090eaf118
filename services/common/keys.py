"""What `chorus keys DIR` makes (chorus.common.keyscommand): every key and certificate the internal traffic needs, one folder per service.

    DIR/ca/ca.key, ca.crt              the private CA of gRPC's mutual TLS; its key stays here,
                                       read only by `chorus keys` (to issue certificates)
    DIR/auth/                          ca.crt; grpc-server.crt/.key; grpc-client.crt/.key (role auth)
    DIR/membership/                    the same (role membership), and CURVE: curve.key_secret, broker.key
    DIR/broker/                        the same (role broker), and CURVE: curve.key_secret,
                                       clients/gateway.key, clients/membership.key (its clients' public keys),
                                       clients/broker.key (the brokers of a cluster share one key pair)
    DIR/gateway/                       ca.crt; grpc-client.crt/.key (role gateway); curve.key_secret, broker.key
    DIR/backends/NAME/                 ca.crt; grpc-client.crt/.key: an outside backend's certificate,
                                       with its permissions (`chorus keys DIR --backend NAME --allow ...`)

Each service is given its own folder (``--keys-dir DIR/SERVICE``) and nothing else, so a
gateway never holds the broker's secret, and no service holds the CA's key. New secret files
are 0600 and new folders 0700 (a container running as another user needs them made readable
to it, inside a private folder: see README "Deploy").

Running it again only adds what is missing, so `chorus up` calls it on every start: keys
that exist are kept, permissions included. A certificate is issued again (with its key
kept) only when it can no longer serve: it is not from DIR's CA, ends within
certs.RENEW_WITHIN_DAYS, lacks a server name asked for (``--server-name``), or states
another role or other permissions. Trust is in the CA, so nobody else needs telling.
"""

from __future__ import annotations

import datetime
import os
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path

import zmq.auth
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from . import certs
from .curve import BROKER_PUBLIC, CLIENTS_DIR, OWN_SECRET
from .grpcauth import BACKEND_ROLE, ROLE_PERMISSIONS, BadBackendName, Holder, check_backend_name
from .grpctls import CA_CERT, CLIENT_CERT, CLIENT_KEY, SERVER_CERT, SERVER_KEY
from .keysdir import KeysError

__all__ = ["ensure_keys", "issue_backend", "CLIENT_ROLES", "GRPC_SERVERS", "DEFAULT_SERVER_HOSTS", "CA_DIR",
           "BACKENDS_DIR"]

CLIENT_ROLES = ("gateway", "membership")   # the broker's CURVE clients
# gRPC server folder -> the name it has on the compose network (each also answers to DEFAULT_SERVER_HOSTS)
GRPC_SERVERS = {"auth": "auth", "membership": "membership", "broker": "broker"}
DEFAULT_SERVER_HOSTS = ("localhost", "127.0.0.1", "::1")
CA_DIR = "ca"
CA_KEY = "ca.key"
BACKENDS_DIR = "backends"


def ensure_keys(root: Path, *, server_names: Iterable[str] = (), now: datetime.datetime | None = None) -> Path:
    """Create whatever of the layout above is missing under ``root``; returns ``root``.
    ``server_names``: more names or addresses every gRPC server is reached at."""
    now = now or _now()
    _folder(root)
    broker = _own_pair(root / "broker")
    clients = _folder(root / "broker" / CLIENTS_DIR)
    for role in CLIENT_ROLES:
        public = _own_pair(root / role)
        _copy_public(public, clients / f"{role}.key")
        _copy_public(broker, root / role / BROKER_PUBLIC)
    _copy_public(broker, clients / "broker.key")
    ca = _authority(root / CA_DIR, now)
    for folder, compose_name in GRPC_SERVERS.items():
        _server(root / folder, ca, now, name=folder, hosts=[*DEFAULT_SERVER_HOSTS, compose_name, *server_names])
    for role in ROLE_PERMISSIONS:
        _client(root / role, ca, now, name=role, role=role)
    return root


def issue_backend(root: Path, name: str, permissions: frozenset[str], *,
                  now: datetime.datetime | None = None) -> Path:
    """DIR/backends/NAME with a client certificate from DIR's CA allowing ``permissions``
    (chorus.common.grpcauth); returns the folder. KeysError when DIR has no CA or the name
    is not a plain lower-case name."""
    try:
        check_backend_name(name)
    except BadBackendName as exc:
        raise KeysError(str(exc)) from None
    if not (root / CA_DIR / CA_KEY).exists():
        raise KeysError(f"{root / CA_DIR / CA_KEY}: no CA here; give the folder your services' keys were made "
                        "in (`chorus keys DIR` makes one; `chorus up` keeps its own in DATA_DIR/keys)")
    now = now or _now()
    folder = _folder(_folder(root / BACKENDS_DIR) / name)
    _client(folder, _authority(root / CA_DIR, now), now, name=name, role=BACKEND_ROLE, permissions=permissions)
    return folder


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


# files ------------------------------------------------------------------------------

def _folder(path: Path) -> Path:
    if not path.exists():
        path.mkdir(mode=0o700, parents=True)
        os.chmod(path, 0o700)  # whatever the umask
    return path


def _write(path: Path, data: bytes, mode: int) -> None:
    """``data`` into ``path`` by rename, so a service starting meanwhile never reads half a file."""
    temporary = path.with_name(f".{path.name}.new")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(temporary, mode)  # whatever the umask
    os.replace(temporary, path)


def _own_pair(folder: Path) -> Path:
    """The folder's CURVE key pair (made when missing); the path of its public certificate."""
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


# X.509 --------------------------------------------------------------------------------

def _authority(folder: Path, now: datetime.datetime) -> certs.Authority:
    """DIR/ca's CA, made when it has no key yet."""
    _folder(folder)
    key_path, cert_path = folder / CA_KEY, folder / CA_CERT
    if not key_path.exists():
        ca = certs.new_authority(now)
        _write(key_path, certs.private_key_pem(ca.key), 0o600)
        _write(cert_path, ca.certificate_pem, 0o644)
        return ca
    try:
        return certs.Authority(certs.load_certificate(cert_path.read_bytes(), str(cert_path)),
                               certs.load_private_key(key_path.read_bytes(), str(key_path)))
    except OSError as exc:
        raise KeysError(f"{exc.filename}: cannot read it ({exc.strerror})") from None
    except certs.CertificateError as exc:
        raise KeysError(str(exc)) from None


def _server(folder: Path, ca: certs.Authority, now: datetime.datetime, *, name: str, hosts: list[str]) -> None:
    _certified(folder, SERVER_CERT, SERVER_KEY, ca,
               issue=lambda key: certs.issue_server(ca, key, name=name, hosts=hosts, now=now),
               keep=lambda cert: certs.still_good(cert, ca, now, hosts=hosts))


def _client(folder: Path, ca: certs.Authority, now: datetime.datetime, *, name: str, role: str,
            permissions: frozenset[str] = frozenset()) -> None:
    holder = Holder(name=name, role=role, permissions=permissions)
    _certified(folder, CLIENT_CERT, CLIENT_KEY, ca,
               issue=lambda key: certs.issue_client(ca, key, name=name, role=role, permissions=permissions,
                                                    now=now),
               keep=lambda cert: certs.still_good(cert, ca, now, holder=holder))


def _certified(folder: Path, cert_name: str, key_name: str, ca: certs.Authority, *,
               issue: Callable[[ec.EllipticCurvePrivateKey], x509.Certificate],
               keep: Callable[[x509.Certificate], bool]) -> None:
    """``folder`` holds the CA's certificate, a key (kept once made) and a certificate for that
    key that ``keep`` accepts (else one from ``issue``)."""
    _folder(folder)
    ca_copy = folder / CA_CERT
    if not ca_copy.exists() or ca_copy.read_bytes() != ca.certificate_pem:
        _write(ca_copy, ca.certificate_pem, 0o644)
    key_path, cert_path = folder / key_name, folder / cert_name
    try:
        if key_path.exists():
            key = certs.load_private_key(key_path.read_bytes(), str(key_path))
        else:
            key = certs.new_private_key()
            _write(key_path, certs.private_key_pem(key), 0o600)
        if cert_path.exists():
            current = certs.load_certificate(cert_path.read_bytes(), str(cert_path))
            if current.public_key() == key.public_key() and keep(current):
                return
    except certs.CertificateError as exc:
        raise KeysError(f"{exc} (remove it and run `chorus keys` again to make a new one)") from None
    _write(cert_path, certs.certificate_pem(issue(key)), 0o644)
