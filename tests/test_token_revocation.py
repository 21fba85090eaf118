"""Logging out closes every socket opened with that token, on every gateway, within 2 seconds:
the four services as processes plus a second webgate on the same auth and broker. Chorus's own
tokens refreshed in-band, on the shared stack."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest

from chat import Api, Person
from processes import Service

REVOCATION_DEADLINE_SECS = 2.0


@pytest.fixture
def two_gateways(services, tmp_path):
    (tmp_path / "second").mkdir()
    started, first_url = services
    first = started["webgate"]
    args = list(first.args)
    args[args.index("--listen") + 1] = "127.0.0.1:0"  # the first one's was pinned to its port
    second = Service("webgate", args, first.env, tmp_path / "second").start()  # same auth, broker, keys
    assert second.address("http") != first_url
    yield first_url, second.address("http")
    assert second.stop() == 0


async def test_logout_closes_the_tokens_sockets_on_every_gateway(two_gateways):
    url_a, url_b = two_gateways
    async with aiohttp.ClientSession() as http:
        api_a, api_b = Api(http, url_a), Api(http, url_b)
        ann = await Person.register(api_a, url_a.replace("http", "ws") + "/ws", "ann")
        other_device = await Person.register(api_a, url_a.replace("http", "ws") + "/ws", "bob")
        on_a = await ann.open_page()
        ann_b = Person(api_b, url_b.replace("http", "ws") + "/ws", ann.username, ann.password)
        ann_b.token = ann.token
        on_b = await ann_b.open_page()
        bystander = await other_device.open_page()

        started = time.monotonic()
        await api_b.ok("POST", "/api/logout", token=ann.token)  # logged out through the OTHER gateway
        closes = await asyncio.gather(on_a.closed(timeout=REVOCATION_DEADLINE_SECS + 1),
                                      on_b.closed(timeout=REVOCATION_DEADLINE_SECS + 1))
        assert closes == [(4001, "token revoked")] * 2
        assert time.monotonic() - started <= REVOCATION_DEADLINE_SECS
        # Another person's socket is untouched; the revoked token opens nothing any more.
        await bystander.send({"op": "ping"})
        await bystander.expect("pong")
        status, _ = await api_a.call("GET", "/api/me", token=ann.token)
        assert status == 401


async def test_a_refreshed_socket_follows_its_new_token(people, api):
    """A Chorus token refreshed in-band: logging out the OLD token no longer closes the socket;
    logging out the new one does."""
    [ann] = await people("ann")
    page = await ann.open_page()
    assert page.ready["expires_at"] > time.time() * 1000
    old_token = ann.token
    new_token = (await api.ok("POST", "/api/login", json={"username": ann.username,
                                                           "password": ann.password}))["token"]
    await page.send({"op": "refresh", "token": new_token, "ref": 1})
    assert (await page.expect("refreshed", ref=1))["expires_at"] > time.time() * 1000
    await api.ok("POST", "/api/logout", token=old_token)
    await asyncio.sleep(REVOCATION_DEADLINE_SECS)
    await page.send({"op": "ping"})
    await page.expect("pong")
    await api.ok("POST", "/api/logout", token=new_token)
    assert await page.closed(timeout=REVOCATION_DEADLINE_SECS + 1) == (4001, "token revoked")


async def test_a_chorus_token_of_another_account_cannot_take_over_a_socket(people):
    ann, bob = await people("ann", "bob")
    page = await ann.open_page()
    await page.send({"op": "refresh", "token": bob.token})
    assert await page.closed() == (4001, "refresh token is for another account")
