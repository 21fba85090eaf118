"""Every answer of the gateway carries the security headers."""

from __future__ import annotations

import aiohttp
import pytest

from chorus.webgate.security import SECURITY_HEADERS


@pytest.fixture
async def http():
    async with aiohttp.ClientSession() as session:
        yield session


async def _get(http, url: str):
    async with http.get(url) as response:
        await response.read()
        return response


async def test_every_answer_carries_the_security_headers(stack, http):
    answers = {
        "the page": "/",
        "a module": "/app.js",
        "the API": "/api/config",
        "an API error": "/api/me",
        "an unknown route": "/nothing-here",
        "the health check": "/healthz",
    }
    for what, path in answers.items():
        response = await _get(http, stack.base_url + path)
        for name, value in SECURITY_HEADERS.items():
            assert response.headers.get(name) == value, f"{what} ({path}, {response.status}): {name}"
    assert SECURITY_HEADERS["Content-Security-Policy"].startswith("default-src 'self';")
