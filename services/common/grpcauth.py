"""Who may call which gRPC method: the roles of our own services and the permissions of backends.

The caller's role comes from its client certificate (issued by chorus.common.certs),
which only the deployment's CA can issue, so a caller cannot choose it: a SAN URI
``chorus:role/ROLE``, and for a backend one ``chorus:allow/PERMISSION`` per permission.
Each role may call:

    role         may call                               because
    gateway      auth.*, membership.*                   every request of the page goes through it
    membership   auth.GetAccounts                       does an account exist? (before a join)
    broker       membership.ListGroupMembers            does a group exist? (Messages)
    auth         nothing                                its certificate is for its own health check
    backend      the permissions in its certificate     `chorus keys DIR --backend NAME --allow ...`

A permission is ``SERVICE.METHOD`` (``messages.PostMessage``) or ``SERVICE.*`` (every method
of the service), SERVICE one of ``auth``, ``membership``, ``messages``. Health checking
and reflection are open to every caller that passed the TLS handshake. Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from chorus.wire.pb import auth_pb2, membership_pb2, messages_pb2

__all__ = ["Holder", "holder_from_names", "ROLE_URI", "ALLOW_URI", "SERVICES", "ROLE_PERMISSIONS", "BACKEND_ROLE",
           "OPEN_SERVICES", "UnknownPermission", "BadBackendName", "all_permissions", "parse_permissions",
           "check_backend_name", "permission_of", "may_call", "refusal"]

ROLE_URI = "chorus:role/"    # + role
ALLOW_URI = "chorus:allow/"  # + permission

# Short service name (as permissions spell it) -> the service, read from the contracts so it cannot drift.
SERVICES = {
    "auth": auth_pb2.DESCRIPTOR.services_by_name["Auth"],
    "membership": membership_pb2.DESCRIPTOR.services_by_name["Membership"],
    "messages": messages_pb2.DESCRIPTOR.services_by_name["Messages"],
}
BACKEND_ROLE = "backend"
ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    "gateway": frozenset({"auth.*", "membership.*"}),
    "membership": frozenset({"auth.GetAccounts"}),
    "broker": frozenset({"membership.ListGroupMembers"}),
    "auth": frozenset(),
}
OPEN_SERVICES = frozenset({"grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection",
                           "grpc.reflection.v1.ServerReflection"})


@dataclass(frozen=True)
class Holder:
    """Who a client certificate was issued to, as the certificate says."""

    name: str                       # subject CN
    role: str | None                # None: the certificate names no role, or several
    permissions: frozenset[str]     # a backend's; empty for our own services' roles


def holder_from_names(common_name: str, alternative_names: Iterable[str]) -> Holder:
    """The holder a certificate states by its CN and SAN entries (as gRPC's auth context lists them)."""
    alternative_names = list(alternative_names)
    roles = [n.removeprefix(ROLE_URI) for n in alternative_names if n.startswith(ROLE_URI)]
    return Holder(name=common_name,
                  role=roles[0] if len(roles) == 1 else None,  # two roles: trust neither
                  permissions=frozenset(n.removeprefix(ALLOW_URI) for n in alternative_names
                                        if n.startswith(ALLOW_URI)))


class UnknownPermission(ValueError):
    """A permission that names no service or method we have; the message lists the valid ones."""


class BadBackendName(ValueError):
    """A backend name that is not a plain lower-case name (it becomes a folder name too)."""


_BACKEND_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")


def check_backend_name(name: str) -> str:
    if not _BACKEND_NAME.fullmatch(name):  # nothing like ../auth
        raise BadBackendName(f"--backend {name!r}: a backend's name is 1 to 63 of a-z, 0-9 and '-', "
                             "starting with a letter or digit")
    return name


def all_permissions() -> list[str]:
    """Every ``SERVICE.METHOD`` and ``SERVICE.*`` there is."""
    return [name for short, service in SERVICES.items()
            for name in (f"{short}.*", *(f"{short}.{method.name}" for method in service.methods))]


def parse_permissions(text: str) -> frozenset[str]:
    """``"messages.PostMessage, membership.*"`` -> the set of permissions; UnknownPermission
    naming the first unknown one (and listing the valid ones) otherwise."""
    permissions = frozenset(part.strip() for part in text.split(",") if part.strip())
    if not permissions:
        raise UnknownPermission("no permissions given: name at least one, e.g. messages.PostMessage")
    valid = set(all_permissions())
    for permission in sorted(permissions):
        if permission not in valid:
            raise UnknownPermission(f"unknown permission {permission!r}; the valid ones: {', '.join(all_permissions())}")
    return permissions


def permission_of(method: str) -> str | None:
    """``/chorus.auth.v1.Auth/GetAccounts`` -> ``auth.GetAccounts``; None for a method of
    another service (health, reflection, unknown)."""
    service, _, name = method.lstrip("/").partition("/")
    for short, descriptor in SERVICES.items():
        if descriptor.full_name == service:
            return f"{short}.{name}"
    return None


def may_call(holder: Holder, method: str) -> bool:
    """Whether ``holder`` may call ``method`` (a full method path, as gRPC names it)."""
    if method.lstrip("/").partition("/")[0] in OPEN_SERVICES:
        return True
    permission = permission_of(method)
    if permission is None:
        return False
    granted = _granted(holder)
    return permission in granted or f"{permission.partition('.')[0]}.*" in granted


def refusal(holder: Holder, method: str) -> str:
    """Why ``holder`` may not call ``method``, for the caller and the log."""
    who = (f"backend {holder.name!r}" if holder.role == BACKEND_ROLE else
           f"role {holder.role!r}" if holder.role else f"a certificate with no role ({holder.name!r})")
    granted = ", ".join(sorted(_granted(holder))) or "nothing but health checks and reflection"
    return f"{who} may not call {method.lstrip('/')} (it may call: {granted})"


def _granted(holder: Holder) -> frozenset[str]:
    if holder.role == BACKEND_ROLE:
        return holder.permissions
    return ROLE_PERMISSIONS.get(holder.role or "", frozenset())
