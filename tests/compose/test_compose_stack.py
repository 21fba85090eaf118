"""compose.yaml end to end: the stack an operator starts with `docker compose up`,
driven from outside through its published loopback ports only."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from tenacity import AsyncRetrying, stop_after_delay, wait_fixed

from chat import Person, assert_delivered_to
from chorus.common.grpctls import ClientTls
from generic_grpc import call_without_stubs

pytestmark = pytest.mark.compose

RECONNECT_WITHIN_SECS = 30
LIVE_WITHIN_SECS = 1.0


async def person_on(compose_stack, compose_api, replica: str, name: str) -> Person:
    """Registered and logged in through nginx; pages open on ``replica`` (or "http" for nginx)."""
    person = await Person.register(compose_api, compose_stack.ws_url(replica), name)
    return person


async def test_people_on_different_replicas_receive_each_others_messages(compose_stack, compose_api):
    ann = await person_on(compose_stack, compose_api, "webgate-a", "ann")
    bob = await person_on(compose_stack, compose_api, "webgate-b", "bob")
    cat = await person_on(compose_stack, compose_api, "http", "cat")  # wherever nginx sends her
    group = await ann.create_group()
    await bob.join(group)
    await cat.join(group)
    pages = [await ann.open_page(), await bob.open_page(), await cat.open_page()]

    await pages[0].post_and_ack(group, "from replica a")
    await assert_delivered_to(pages, group, "from replica a")
    await pages[1].post_and_ack(group, "from replica b")
    await assert_delivered_to(pages, group, "from replica b")
    history = await compose_api.ok("GET", f"/api/groups/{group['id']}/messages", token=cat.token)
    assert [m["text"] for m in history["messages"]][:2] == ["from replica b", "from replica a"]


async def test_restarting_a_replica_its_pages_reconnect_and_miss_nothing(compose_stack, compose_api):
    ann = await person_on(compose_stack, compose_api, "webgate-a", "ann")
    bob = await person_on(compose_stack, compose_api, "webgate-b", "bob")
    group = await ann.create_group()
    await bob.join(group)
    ann_page, bob_page = await ann.open_page(), await bob.open_page()
    seen = (await bob_page.post_and_ack(group, "before the restart"))["seq"]
    await ann_page.expect("message", group=group["id"], seq=seen)

    restart = asyncio.create_task(asyncio.to_thread(compose_stack.run, "restart", "-t", "10", "webgate-a"))
    code, _ = await ann_page.closed(timeout=30)
    assert code == 1001, "a stopping replica says 'going away' so pages reconnect at once"
    acked = []
    for i in range(20):  # while replica a is down and coming back
        acked.append((await bob_page.post_and_ack(group, f"during restart {i}"))["seq"])
        await asyncio.sleep(0.05)

    # Ann's page reconnects the way the browser does: through nginx, which skips the dead replica.
    ann.ws_url = compose_stack.ws_url("http")
    ann_page = await _open_within(ann, RECONNECT_WITHIN_SECS)
    await ann_page.send({"op": "resume", "since": {group["id"]: seen}})
    replayed = []
    while (frame := await ann_page.next_frame())["op"] != "resumed":
        replayed.append(frame)
    assert [f["seq"] for f in replayed if f["op"] == "message"] == acked, "each missed message once, in order"

    await restart
    compose_stack.wait_healthy("webgate-a")
    ann.ws_url = compose_stack.ws_url("webgate-a")
    back_on_a = await ann.open_page()
    await bob_page.post_and_ack(group, "after the restart")
    await assert_delivered_to([back_on_a, ann_page, bob_page], group, "after the restart")


async def test_another_backend_adds_a_member_over_grpc_and_live_pages_follow(compose_stack, compose_api):
    ann = await person_on(compose_stack, compose_api, "webgate-a", "ann")
    bob = await person_on(compose_stack, compose_api, "webgate-b", "bob")
    group = await ann.create_group()
    ann_page, bob_page = await ann.open_page(), await bob.open_page()

    await asyncio.to_thread(call_without_stubs, f"127.0.0.1:{compose_stack.ports['membership']}",
                            "chorus.membership.v1.Membership", "JoinGroup",
                            tls=ClientTls.load(compose_stack.backend_keys),
                            group_id=group["id"], account_id=bob.user["id"])
    joined = await bob_page.expect("joined", timeout=LIVE_WITHIN_SECS)
    assert joined["group"]["id"] == group["id"]
    await ann_page.post_and_ack(group, "welcome bob")
    await assert_delivered_to([bob_page], group, "welcome bob")


async def _open_within(person: Person, seconds: float):
    """The person's page, opened again and again (the gateway may be restarting) for ``seconds``."""
    retrying = AsyncRetrying(stop=stop_after_delay(seconds), wait=wait_fixed(0.5), reraise=True)
    return await retrying(person.open_page)


async def test_logging_out_closes_the_tokens_pages_on_both_replicas(compose_stack, compose_api):
    ann = await person_on(compose_stack, compose_api, "webgate-a", "ann")
    on_a = await ann.open_page()
    ann.ws_url = compose_stack.ws_url("webgate-b")
    on_b = await ann.open_page()
    await compose_api.ok("POST", "/api/logout", token=ann.token)  # through nginx, to either replica
    closes = await asyncio.gather(on_a.closed(timeout=3), on_b.closed(timeout=3))
    assert closes == [(4001, "token revoked")] * 2


async def test_through_nginx_the_pages_own_origin_opens_a_websocket_and_a_foreign_one_does_not(
        compose_stack, compose_api):
    ann = await person_on(compose_stack, compose_api, "http", "ann")
    own = compose_stack.base_url  # the Origin a page served by this stack sends
    ws = await compose_api.http.ws_connect(compose_stack.ws_url("http"), headers={"Origin": own})
    await ws.send_json({"op": "auth", "token": ann.token})
    assert (await ws.receive_json(timeout=5))["op"] == "ready"
    await ws.close()
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await compose_api.http.ws_connect(compose_stack.ws_url("http"), headers={"Origin": "https://evil.example"})
    assert refused.value.status == 403
