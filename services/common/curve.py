"""CURVE for the broker's sockets: who may connect, and as what (RFC 26 CurveZMQ, through zmq.auth).

Every ZeroMQ connection to the broker is encrypted and authenticated. The
broker's ROUTER and PUB are CURVE servers; a ZAP handler (pyzmq's
ThreadAuthenticator) admits a client only if its public key is one of the
broker's known clients, and only for the sockets its role may use:

    role          ROUTER (requests)                          PUB (group traffic)
    gateway       sessions, posts, history, read markers     yes
    membership    membership changes and snapshots           no
    broker        system posts and history (a cluster's      no
                  brokers forwarding to a group's owner)

The role of each request comes from the ZAP User-Id of the frame it arrived
in (the client's public key, mapped to the role its certificate file is named
after: ``clients/gateway.key``, ``clients/membership-2.key``), so a client
cannot claim another's role; the broker's core decides per role what
it may ask (chorus.broker.core). Connections over ``inproc://`` (the Messages
service inside the broker process) carry no User-Id: ZeroMQ does not secure
them, and nothing outside the process can open one.

Keys are pyzmq's ZPL certificate files (``zmq.auth.create_certificates``),
laid out by ``chorus keys`` (chorus.common.keys): each service gets a folder
with its own secret certificate and the public certificates it needs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator

from .keysdir import KeysError

__all__ = ["ClientCurve", "ServerCurve", "KeysError", "ROUTER_DOMAIN", "PUB_DOMAIN", "ROLES_BY_DOMAIN",
           "OWN_SECRET", "BROKER_PUBLIC", "CLIENTS_DIR"]

log = logging.getLogger(__name__)

ROUTER_DOMAIN = "chorus-router"
PUB_DOMAIN = "chorus-pub"
# "broker": another broker of a cluster (its Messages service forwards a post to the group's owner).
ROLES_BY_DOMAIN = {ROUTER_DOMAIN: frozenset({"gateway", "membership", "broker"}), PUB_DOMAIN: frozenset({"gateway"})}

OWN_SECRET = "curve.key_secret"   # in every service's keys folder: its own key pair
BROKER_PUBLIC = "broker.key"      # in each client's folder: the broker's public key
CLIENTS_DIR = "clients"           # in the broker's folder: every client's public certificate


def _load(path: Path, *, secret: bool) -> tuple[bytes, bytes | None]:
    try:
        public, secret_key = zmq.auth.load_certificate(path)
    except (OSError, ValueError) as exc:
        raise KeysError(f"{path}: {exc}") from None
    if secret and secret_key is None:
        raise KeysError(f"{path}: has no secret key (a .key_secret file is needed)")
    return public, secret_key


@dataclass(frozen=True)
class ClientCurve:
    """A client's key pair and the broker's public key."""

    public: bytes
    secret: bytes
    server_public: bytes

    @classmethod
    def load(cls, folder: Path) -> "ClientCurve":
        public, secret = _load(folder / OWN_SECRET, secret=True)
        server_public, _ = _load(folder / BROKER_PUBLIC, secret=False)
        return cls(public, secret, server_public)

    def apply(self, socket: zmq.Socket) -> None:
        socket.curve_publickey = self.public
        socket.curve_secretkey = self.secret
        socket.curve_serverkey = self.server_public


@dataclass(frozen=True)
class ServerCurve:
    """The broker's key pair and its known clients: z85 public key -> role."""

    public: bytes
    secret: bytes
    roles: dict[bytes, str]

    @classmethod
    def load(cls, folder: Path) -> "ServerCurve":
        public, secret = _load(folder / OWN_SECRET, secret=True)
        roles: dict[bytes, str] = {}
        clients = folder / CLIENTS_DIR
        for path in sorted(clients.glob("*.key")) if clients.is_dir() else ():
            role = path.stem.partition("-")[0]  # gateway.key, gateway-eu.key, membership.key
            if role not in ROLES_BY_DOMAIN[ROUTER_DOMAIN]:
                raise KeysError(f"{path}: a client certificate is named after its role "
                                f"({', '.join(sorted(ROLES_BY_DOMAIN[ROUTER_DOMAIN]))}), optionally -NAME")
            roles[_load(path, secret=False)[0]] = role
        if not roles:
            raise KeysError(f"{clients}: no client certificates (*.key); run `chorus keys` again")
        return cls(public, secret, roles)

    def as_client(self) -> ClientCurve:
        """This broker as a client of the others of its cluster (they share its key pair)."""
        return ClientCurve(self.public, self.secret, self.public)

    def role_of(self, user_id: str) -> str | None:
        return self.roles.get(user_id.encode())

    def apply(self, socket: zmq.Socket, domain: str) -> None:
        socket.zap_domain = domain.encode()
        socket.curve_publickey = self.public
        socket.curve_secretkey = self.secret
        socket.curve_server = True

    def start_authenticator(self, context: zmq.Context) -> ThreadAuthenticator:
        """The ZAP handler of ``context``: admits known keys to the domains their role may use."""
        authenticator = ThreadAuthenticator(context, log=logging.getLogger("chorus.zap"))
        authenticator.start()
        for domain, allowed in ROLES_BY_DOMAIN.items():
            authenticator.configure_curve_callback(domain, _Admit(self.roles, allowed, domain))
        return authenticator


class _Admit:
    """pyzmq's credentials provider: the key must be known and its role allowed on this socket."""

    def __init__(self, roles: dict[bytes, str], allowed: frozenset[str], domain: str) -> None:
        self._roles, self._allowed, self._domain = roles, allowed, domain

    def callback(self, domain: str, key: bytes) -> bool:
        role = self._roles.get(key)
        if role in self._allowed:
            return True
        log.warning("refused a ZeroMQ connection to %s: %s", self._domain,
                    "unknown key" if role is None else f"role {role} may not use it")
        return False
