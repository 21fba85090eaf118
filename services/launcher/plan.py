"""What `chorus up` runs, and where: no I/O, so it is tested with plain asserts.

- The services start in ``SERVICES`` order. Each one is told the addresses of those
  before it (membership asks auth which accounts exist); membership is also told the broker's ROUTER, which starts after it, so
  that port must be fixed (``config`` refuses 0 for it).
- A port given as 0 is learned from the service's readiness line and then kept:
  a restarted service binds the same port again, so the others reconnect to it.
- The page (webgate) listens on ``host``; everything else on ``internal_host``
  (loopback unless asked), so sharing the page on a network shares nothing else.
- Every service is given its own folder of DATA_DIR/keys (``keys_root``): ZeroMQ
  (CURVE) and gRPC (mutual TLS) traffic is authenticated and encrypted here too. The
  gRPC servers' certificates name the internal address they are reached at
  (``server_names``).
"""

from __future__ import annotations

from pathlib import Path

from chorus.common.config import join_host_port
from chorus.launcher.config import PORT_FIELDS, Settings

__all__ = ["SERVICES", "initial_ports", "learned", "command", "keys_root", "server_names", "page_url",
           "addresses"]

SERVICES = ("auth", "membership", "broker", "webgate")

# For each service: the key of its readiness object -> the port setting it fills.
_REPORTS = {
    "auth": {"grpc": "auth_port"},
    "membership": {"grpc": "membership_port"},
    "broker": {"router": "broker_router_port", "pub": "broker_pub_port", "grpc": "broker_grpc_port"},
    "webgate": {"http": "http_port"},
}
# A wildcard address to listen on -> the address to connect to it by.
_WILDCARDS = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}

Ports = dict[str, int]  # port setting -> port; 0 until the service has reported it


def initial_ports(settings: Settings) -> Ports:
    return {name: getattr(settings, name) for name in PORT_FIELDS}


def learned(service: str, ready: dict) -> Ports:
    """The ports ``service`` reports in its readiness object (``"tcp://h:p"``, ``"h:p"`` or a URL)."""
    return {name: int(str(ready[key]).rstrip("/").rpartition(":")[2]) for key, name in _REPORTS[service].items()}


def command(service: str, settings: Settings, ports: Ports, python: str) -> list[str]:
    """The command line of ``service`` given the ports known so far."""
    def listen(port: str) -> str:
        return join_host_port(settings.internal_host, ports[port])

    def at(port: str) -> str:
        return _reach(settings, ports, port)

    def keys(folder: str) -> list[str]:
        return ["--keys-dir", str(keys_root(settings) / folder)]

    data = ["--data-dir", str(settings.data_dir)]
    commands = {
        "auth": ["--listen", listen("auth_port"), *data, *keys("auth")],
        "membership": ["--listen", listen("membership_port"), *data,
                       "--broker-router", f"tcp://{at('broker_router_port')}", "--auth", at("auth_port"),
                       *keys("membership")],
        "broker": ["--router", f"tcp://{listen('broker_router_port')}", "--pub", f"tcp://{listen('broker_pub_port')}",
                   *data, "--grpc-listen", listen("broker_grpc_port"), "--membership", at("membership_port"),
                   *keys("broker")],
        "webgate": ["--listen", join_host_port(settings.host, ports["http_port"]),
                    "--auth", at("auth_port"), "--membership", at("membership_port"),
                    "--broker-router", f"tcp://{at('broker_router_port')}",
                    "--broker-pub", f"tcp://{at('broker_pub_port')}", *keys("gateway")],
    }
    return [python, "-m", "chorus", service, *commands[service]]


def keys_root(settings: Settings) -> Path:
    """Where `chorus up` keeps the internal traffic's keys (chorus.common.keys makes them)."""
    return settings.data_dir / "keys"


def server_names(settings: Settings) -> list[str]:
    """Names the gRPC servers' certificates must hold besides loopback's: the address the
    services are reached at, when ``internal_host`` is not loopback or a wildcard."""
    reached = _WILDCARDS.get(settings.internal_host, settings.internal_host)
    return [] if reached in ("127.0.0.1", "::1", "localhost") else [reached]


def page_url(settings: Settings, ports: Ports) -> str:
    return f"http://{join_host_port(settings.host, ports['http_port'])}"


def addresses(settings: Settings, ports: Ports) -> dict[str, str]:
    """Where everything is, once every service has reported: `chorus up`'s readiness object."""
    def at(port: str) -> str:
        return _reach(settings, ports, port)

    return {"http": page_url(settings, ports), "auth": at("auth_port"), "membership": at("membership_port"),
            "broker_router": f"tcp://{at('broker_router_port')}", "broker_pub": f"tcp://{at('broker_pub_port')}",
            "broker_grpc": at("broker_grpc_port")}


def _reach(settings: Settings, ports: Ports, port: str) -> str:
    """HOST:PORT to connect to an internal service (a wildcard listen address is reached on loopback)."""
    return join_host_port(_WILDCARDS.get(settings.internal_host, settings.internal_host), ports[port])
