"""SIGTERM on a webgate closes its pages with 1001 "going away", so they reconnect at once."""

from __future__ import annotations

import aiohttp

from chat import Api, Person


async def test_sigterm_on_the_webgate_tells_open_pages_it_is_going_away(services):
    started, base_url = services
    async with aiohttp.ClientSession() as http:
        api = Api(http, base_url)
        alice = await Person.register(api, base_url.replace("http", "ws") + "/ws", "alice")
        page = await alice.open_page()
        started["webgate"].stop()
        msg = await page.ws.receive(timeout=10)
        assert (msg.type, msg.data, msg.extra) == (aiohttp.WSMsgType.CLOSE, 1001, "going away")
        started["webgate"].start()  # the fixture stops every service again at the end
