"""A broker that dies and comes back: gateways register their live sessions
again by themselves and the open pages go on sending and receiving."""

from __future__ import annotations

import asyncio
import signal

import aiohttp

from chat import Api, Person, assert_delivered_to
from generic_grpc import backend_tls, call_without_stubs

RECOVERY_SECS = 15  # heartbeat 1 s + reconnect; generous for a loaded CI machine


async def test_pages_keep_working_after_the_broker_is_killed_and_restarted(services):
    started, base_url = services
    async with aiohttp.ClientSession() as http:
        api, group, alice_page, bob_page = await two_members_online(http, base_url)
        bob = bob_page.person
        await alice_page.post_and_ack(group, "before")
        await assert_delivered_to([bob_page], group, "before")

        started["broker"].kill()
        started["broker"].start()

        deadline = asyncio.get_running_loop().time() + RECOVERY_SECS
        while True:  # until the gateway has registered the sessions with the new broker
            ref = await alice_page.post(group, "after")
            frame = await alice_page.answer(ref)
            if frame["op"] == "ack":
                break
            assert frame["code"] == "unavailable", frame
            assert asyncio.get_running_loop().time() < deadline, "the sessions never came back"
            await asyncio.sleep(0.5)
        await assert_delivered_to([bob_page, alice_page], group, "after")
        assert frame["seq"] == 2, "the group's sequence continues from the stored messages"
        history = await api.ok("GET", f"/api/groups/{group['id']}/messages", token=bob.token)
        assert [m["text"] for m in history["messages"]] == ["after", "before"]


async def test_a_page_that_stays_open_gets_what_the_new_broker_sent_before_its_gateway_was_back(services, tmp_path):
    """The gateway's subscriptions reach a restarted broker only after it reconnects;
    what was published before then is caught up from history, with no resume by the page."""
    started, base_url = services
    async with aiohttp.ClientSession() as http:
        _api, group, alice_page, bob_page = await two_members_online(http, base_url)
        await alice_page.post_and_ack(group, "before")
        await assert_delivered_to([bob_page], group, "before")

        gateway = started["webgate"].process
        gateway.send_signal(signal.SIGSTOP)  # it cannot reconnect or subscribe until SIGCONT
        try:
            started["broker"].kill()
            started["broker"].start()
            args = started["broker"].args
            reply = await asyncio.to_thread(
                call_without_stubs, args[args.index("--grpc-listen") + 1], "chorus.messages.v1.Messages",
                "PostMessage", tls=backend_tls(tmp_path / "keys", "billing", "messages.PostMessage"),
                group_id=group["id"], sender_name="Billing", text="while the gateway was away")
        finally:
            gateway.send_signal(signal.SIGCONT)
        frames = [await page.expect("message", timeout=RECOVERY_SECS, text="while the gateway was away")
                  for page in (alice_page, bob_page)]
        assert [f["seq"] for f in frames] == [reply.seq, reply.seq] == [2, 2]
        await alice_page.post_and_ack(group, "after")
        await assert_delivered_to([alice_page, bob_page], group, "after")


async def two_members_online(http, base_url: str):
    """Alice and Bob, both in a new group and both with a page open."""
    api = Api(http, base_url)
    ws_url = base_url.replace("http", "ws") + "/ws"
    alice, bob = await Person.register(api, ws_url, "alice"), await Person.register(api, ws_url, "bob")
    group = await alice.create_group()
    await bob.join(group)
    return api, group, await alice.open_page(), await bob.open_page()


async def test_kill_9_while_posting_loses_no_acked_message_and_resume_fills_every_gap(services):
    started, base_url = services
    async with aiohttp.ClientSession() as http:
        api, group, alice_page, bob_page = await two_members_online(http, base_url)
        bob = bob_page.person
        seen: set[int] = set()  # bob's page view: the seqs it holds

        async def watch():
            while True:
                frame = await bob_page.next_frame(timeout=30)
                if frame["op"] == "message":
                    seen.add(frame["seq"])

        watching = asyncio.create_task(watch())
        acked, refused = [], 0
        for i in range(POSTS):
            if i == POSTS // 3:
                started["broker"].kill()
                started["broker"].start()
            ref = await alice_page.post(group, f"m{i}")
            frame = await alice_page.answer(ref)
            alice_page.seen.clear()
            if frame["op"] == "ack":
                acked.append(frame["seq"])
            else:
                assert frame["code"] == "unavailable", frame
                refused += 1
                await asyncio.sleep(0.2)
        await asyncio.sleep(0.5)  # let the last live deliveries arrive
        watching.cancel()

        history = await api.ok("GET", f"/api/groups/{group['id']}/messages?limit=100", token=bob.token)
        stored = sorted(m["seq"] for m in history["messages"])
        assert not history["more"] and len(acked) > POSTS // 2
        assert set(acked) <= set(stored), "every acked message is stored"
        assert stored == list(range(1, len(stored) + 1)), "no gaps in the sequence"

        contiguous = 0
        while contiguous + 1 in seen:
            contiguous += 1
        await bob_page.send({"op": "resume", "since": {group["id"]: contiguous}})
        while True:
            frame = await bob_page.next_frame()
            if frame["op"] == "resumed":
                break
            if frame["op"] == "message":
                seen.add(frame["seq"])
        assert sorted(seen) == stored, "the page's view is exactly the stored history"


POSTS = 60
