"""Which address the per-address login limit counts, behind proxies or not."""

from __future__ import annotations

from ipaddress import ip_network

import pytest

from chorus.webgate.http_api import client_address

PROXIES = (ip_network("10.0.0.0/24"), ip_network("fd00::/64"))


@pytest.mark.parametrize("peer, forwarded_for, expected", [
    ("203.0.113.7", None, "203.0.113.7"),                              # no proxy
    ("203.0.113.7", "198.51.100.1", "203.0.113.7"),                    # untrusted peer: its header is ignored
    ("10.0.0.5", "198.51.100.1", "198.51.100.1"),                      # one trusted proxy
    ("10.0.0.5", "6.6.6.6, 198.51.100.1, 10.0.0.9", "198.51.100.1"),   # two proxies; the left is forged
    ("10.0.0.5", None, "10.0.0.5"),                                    # a proxy without the header
    ("10.0.0.5", "10.0.0.8", "10.0.0.8"),                              # only proxies: the last one seen
    ("fd00::2", "2001:db8::1", "2001:db8::1"),
    ("10.0.0.5", "not an address", "not an address"),
    (None, None, "unknown"),
])
def test_client_address(peer, forwarded_for, expected):
    assert client_address(peer, forwarded_for, PROXIES) == expected


def test_without_trusted_proxies_the_header_is_never_read():
    assert client_address("10.0.0.5", "198.51.100.1", ()) == "10.0.0.5"
