"""What `chorus up` runs, and where: no I/O, so it is tested with plain asserts.

- The services start in ``SERVICES`` order. Each one is told the addresses of those
  before it (membership asks auth which accounts exist); membership is also told the broker's ROUTER, which starts after it, so
  that port must be fixed (``config`` refuses 0 for it).
- A port given as 0 is learned from the service's readiness line and then kept:
  a restarted service binds the same port again, so the others reconnect to it.
- The page (webgate) listens on ``host``; everything else on ``internal_host``
  (loopback unless asked), so sharing the page on a network shares nothing else.
- ``--brokers N`` (N > 1, PostgreSQL only) runs a cluster: brokers broker (node
  broker-1), broker-2 ... broker-N, their ROUTERs on fixed ports 100 apart;
  membership and webgate are given all of them as seeds.
- Every service is given its own folder of DATA_DIR/keys (``keys_root``): ZeroMQ
  (CURVE) and gRPC (mutual TLS) traffic is authenticated and encrypted here too. The
  gRPC servers' certificates name the internal address they are reached at
  (``server_names``).
- The sites whose tokens sign people in, and the origins allowed to open
  WebSockets, are webgate's: given to `chorus up`, they are passed on to it.
"""

from __future__ import annotations

from pathlib import Path

from chorus.common.config import join_host_port
from chorus.common.sites import site_flags
from chorus.launcher.config import PORT_FIELDS, Settings

__all__ = ["SERVICES", "services", "initial_ports", "learned", "command", "keys_root", "server_names", "page_url",
           "addresses"]

SERVICES = ("auth", "membership", "broker", "webgate")
CLUSTER_ROUTER_PORT_STEP = 100  # broker k's ROUTER listens on --broker-router-port + 100 * (k - 1)

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


def services(settings: Settings) -> list[str]:
    """The children in start order: with ``--brokers N``, brokers broker, broker-2 ... broker-N."""
    brokers = [f"broker-{k}" for k in range(2, settings.brokers + 1)]
    return ["auth", "membership", "broker", *brokers, "webgate"]


def _suffix(service: str) -> str:
    """Port keys of broker k > 1 carry "@k"; everyone else's are the settings' names."""
    return "@" + service.rpartition("-")[2] if service.startswith("broker-") else ""


def initial_ports(settings: Settings) -> Ports:
    ports = {name: getattr(settings, name) for name in PORT_FIELDS}
    for k in range(2, settings.brokers + 1):  # fixed ROUTERs (membership and gateways seed from them)
        ports[f"broker_router_port@{k}"] = settings.broker_router_port + CLUSTER_ROUTER_PORT_STEP * (k - 1)
        ports[f"broker_pub_port@{k}"] = ports[f"broker_grpc_port@{k}"] = 0
    return ports


def learned(service: str, ready: dict) -> Ports:
    """The ports ``service`` reports in its readiness object (``"tcp://h:p"``, ``"h:p"`` or a URL)."""
    kind = "broker" if service.startswith("broker") else service
    return {name + _suffix(service): int(str(ready[key]).rstrip("/").rpartition(":")[2])
            for key, name in _REPORTS[kind].items()}


def _routers(settings: Settings, ports: Ports) -> str:
    return ",".join(f"tcp://{_reach(settings, ports, 'broker_router_port' + _suffix(name))}"
                    for name in services(settings) if name.startswith("broker"))


def command(service: str, settings: Settings, ports: Ports, python: str) -> list[str]:
    """The command line of ``service`` given the ports known so far."""
    def listen(port: str) -> str:
        return join_host_port(settings.internal_host, ports[port])

    def at(port: str) -> str:
        return _reach(settings, ports, port)

    def keys(folder: str) -> list[str]:
        return ["--keys-dir", str(keys_root(settings) / folder)]

    data = ["--data-dir", str(settings.data_dir)]
    cluster = settings.brokers > 1
    if service.startswith("broker"):
        k = _suffix(service)
        node = ["--cluster-node", service if k else "broker-1"] if cluster else []
        return [python, "-m", "chorus", "broker", "--router", f"tcp://{listen('broker_router_port' + k)}",
                "--pub", f"tcp://{listen('broker_pub_port' + k)}", *data,
                "--grpc-listen", listen("broker_grpc_port" + k), "--membership", at("membership_port"),
                *node, *keys("broker")]
    brokers = (["--broker-seeds", _routers(settings, ports)] if cluster else
               ["--broker-router", f"tcp://{at('broker_router_port')}"])
    commands = {
        "auth": ["--listen", listen("auth_port"), *data, *keys("auth")],
        "membership": ["--listen", listen("membership_port"), *data, *brokers, "--auth", at("auth_port"),
                       *keys("membership")],
        "webgate": ["--listen", join_host_port(settings.host, ports["http_port"]),
                    "--auth", at("auth_port"), "--membership", at("membership_port"), *brokers,
                    *([] if cluster else ["--broker-pub", f"tcp://{at('broker_pub_port')}"]), *keys("gateway"),
                    *_site_flags(settings)],
    }
    return [python, "-m", "chorus", service, *commands[service]]


def _site_flags(settings: Settings) -> list[str]:
    origins = ["--allowed-origins", ",".join(settings.allowed_origins)] if settings.allowed_origins else []
    return [*site_flags(settings.sites), *origins]


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
