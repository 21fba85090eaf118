"""`chorus up --host 0.0.0.0` shares the page on the network and nothing else: auth,
membership and the broker's ROUTER, PUB and gRPC stay on loopback."""

from __future__ import annotations

import socket
import urllib.request
from ipaddress import ip_address

import pytest

LISTEN = "0A"  # the TCP state in /proc/net/tcp*


def listening() -> dict[int, set[str]]:
    """port -> the local addresses listening on it, from the kernel's own tables."""
    found: dict[int, set[str]] = {}
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        try:
            lines = open(table).read().splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            if state != LISTEN:
                continue
            host_hex, port_hex = local.split(":")
            found.setdefault(int(port_hex, 16), set()).add(_address(host_hex, width))
    return found


def _address(host_hex: str, width: int) -> str:
    """/proc/net/tcp* print addresses as 32-bit words in host (little-endian) order."""
    raw = bytes.fromhex(host_hex)
    words = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
    return str(ip_address(words)) if width == 8 else str(ip_address(words).ipv4_mapped or ip_address(words))


def non_loopback_address() -> str | None:
    """An address of this machine that is not loopback (none on an isolated host)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: nothing is sent, the kernel only picks a route
        except OSError:
            return None
        address = probe.getsockname()[0]
    return None if ip_address(address).is_loopback else address


def test_with_host_0_0_0_0_only_the_page_listens_beyond_loopback(start_stack):
    with start_stack({}, ["--host", "0.0.0.0"]) as stack:
        ports = listening()
        assert ports[stack.ports["http"]] == {"0.0.0.0"}
        for name in ("auth", "membership", "broker-router", "broker-pub", "broker-grpc"):
            assert ports[stack.ports[name]] == {"127.0.0.1"}, name

        outside = non_loopback_address()
        if outside is None:
            pytest.skip("this machine has no non-loopback address to connect through")
        with urllib.request.urlopen(f"http://{outside}:{stack.ports['http']}/healthz", timeout=5) as response:
            assert response.status == 200, "the page is reachable from the network"
        for name in ("auth", "membership", "broker-router", "broker-pub", "broker-grpc"):
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection((outside, stack.ports[name]), timeout=5).close()


def test_by_default_nothing_listens_beyond_loopback(stack):
    ports = listening()
    for name in ("http", "auth", "membership", "broker-router", "broker-pub", "broker-grpc"):
        assert ports[stack.ports[name]] == {"127.0.0.1"}, name
