"""When the device cookie is marked Secure: the browser's scheme, as the gateway can know it."""

from __future__ import annotations

import pytest

from chorus.webgate.device_cookie import came_over_https


@pytest.mark.parametrize("scheme, forwarded_proto, from_trusted_proxy, expected", [
    ("http", None, False, False),
    ("https", None, False, True),
    ("http", "https", False, False),        # anyone can send the header: not believed
    ("http", "https", True, True),          # a trusted proxy terminated TLS
    ("https", "http", True, False),         # ... or did not
    ("http", "http, https", True, True),    # the last value is the one our proxy set
    ("http", "HTTPS", True, True),
    ("http", "", True, False),              # a trusted proxy without the header: our scheme
])
def test_came_over_https(scheme, forwarded_proto, from_trusted_proxy, expected):
    assert came_over_https(scheme, forwarded_proto, from_trusted_proxy=from_trusted_proxy) is expected
