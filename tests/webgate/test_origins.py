"""Which pages may open WebSockets: the gateway's own (by the Host asked for) and allowed origins."""

from __future__ import annotations

import pytest

from chorus.webgate.origins import origin_allowed

ALLOWED = ("https://school.example",)


@pytest.mark.parametrize("origin, host, allowed", [
    (None, "chat.example", True),                          # no browser, nothing to protect
    ("https://chat.example", "chat.example", True),        # the gateway's own page
    ("http://127.0.0.1:8080", "127.0.0.1:8080", True),
    ("https://CHAT.example", "chat.example", True),
    ("https://school.example", "chat.example", True),      # allowed
    ("https://evil.example", "chat.example", False),
    ("http://127.0.0.1:3000", "127.0.0.1:8080", False),    # another port is another origin
    ("https://chat.example.evil.example", "chat.example", False),
    ("null", "chat.example", False),                       # sandboxed frames, files
    ("https://school.example.evil", "chat.example", False),
    ("https://chat.example", None, False),
])
def test_origins(origin, host, allowed):
    assert origin_allowed(origin, host, ALLOWED) is allowed
