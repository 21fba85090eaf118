"""Exactly-once sends across the failures that used to store a message twice.

A page (or backend) that did not hear its ack sends again with the same
``idempotency_key``; the broker answers with the original group, seq and ts,
and nothing new is stored or delivered, whichever gateway the retry comes
through and even after the broker was killed in between.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import aiohttp
import zmq

from chat import Api, Person, assert_nothing_arrives
from chorus.common.brokerlink import ThreadBrokerLink
from chorus.common.curve import ClientCurve
from chorus.wire.conversation import BrokerProblem
from chorus.wire.pb import broker_pb2
from conftest import free_port
from processes import Service
from test_broker_restart import RECOVERY_SECS

KEY = "7f0c7a2e-3f1b-4c1e-9a55-2d0a1b6c9e01"


async def send_with_key(page, group: dict, text: str, key: str) -> dict:
    """Send until the broker answers (it may be re-registering the page's session); the ack."""
    deadline = asyncio.get_running_loop().time() + RECOVERY_SECS
    while True:
        ref = f"r{time.monotonic_ns()}"
        await page.send({"op": "send", "group": group["id"], "text": text, "ref": ref, "idempotency_key": key})
        frame = await page.answer(ref)
        if frame["op"] == "ack":
            return frame
        assert frame["code"] == "unavailable", frame
        assert asyncio.get_running_loop().time() < deadline, "the broker never came back"
        await asyncio.sleep(0.3)


async def test_a_retry_through_another_gateway_after_a_broker_kill_gets_the_same_ack(services, tmp_path):
    started, base_url = services
    args = started["webgate"].args
    second_port = free_port()
    second_args = list(args)
    second_args[second_args.index("--listen") + 1] = f"127.0.0.1:{second_port}"
    second = Service("webgate", second_args, started["webgate"].env, tmp_path).start()
    try:
        async with aiohttp.ClientSession() as http:
            api = Api(http, base_url)
            ws_url = base_url.replace("http", "ws") + "/ws"
            alice, bob = await Person.register(api, ws_url, "alice"), await Person.register(api, ws_url, "bob")
            group = await alice.create_group()
            await bob.join(group)
            page, bob_page = await alice.open_page(), await bob.open_page()
            first = await send_with_key(page, group, "rent is paid", KEY)
            assert first["idempotency_key"] == KEY
            await bob_page.expect("message", text="rent is paid")

            started["broker"].kill()
            started["broker"].start()
            alice.ws_url = f"ws://127.0.0.1:{second_port}/ws"  # the page reconnects elsewhere
            elsewhere = await alice.open_page()
            again = await send_with_key(elsewhere, group, "rent is paid", KEY)

            assert (again["group"], again["seq"], again["ts"]) == (first["group"], first["seq"], first["ts"])
            await assert_nothing_arrives(bob_page, within=1.0)
            history = await api.ok("GET", f"/api/groups/{group['id']}/messages", token=bob.token)
            assert [m["text"] for m in history["messages"]] == ["rent is paid"]
            other = await send_with_key(elsewhere, group, "rent is paid", KEY + "-next")
            assert other["seq"] == first["seq"] + 1, "a new key is a new message, same text or not"
    finally:
        assert second.stop() == 0


async def test_a_broker_killed_between_commit_and_ack_answers_the_retry_with_the_stored_message(services,
                                                                                                 tmp_path):
    """The sender never hears the ack: the broker dies after its commit. The retry, to the
    restarted broker, gets the original seq and ts; the message is stored once. The sender
    here is a gateway's conversation driven by hand, so the test decides when it reads."""
    started, base_url = services
    async with aiohttp.ClientSession() as http:
        api = Api(http, base_url)
        person = await Person.register(api, base_url.replace("http", "ws") + "/ws", "alice")
        group = await person.create_group()
    await asyncio.to_thread(_post_kill_and_retry, started, person.user, group["id"],
                            ClientCurve.load(tmp_path / "keys" / "gateway"))


def _post_kill_and_retry(started, user: dict, group_id: str, curve: ClientCurve) -> None:
    args = started["broker"].args
    router = args[args.index("--router") + 1]
    database = Path(args[args.index("--data-dir") + 1]) / "broker.db"
    alice = broker_pb2.Person(id=user["id"], username=user["username"], display_name=user["display_name"])
    post = broker_pb2.Post(session_id="s1", group_id=group_id, text="paid once", idempotency_key=KEY)
    context = zmq.Context()
    link = ThreadBrokerLink(context, router, client_id="gw-test", timeout_secs=5, curve=curve)
    try:
        link.request(time.monotonic() + 5, "done", open_session=broker_pb2.OpenSession(
            session_id="s1", account=alice, group_ids=[group_id]))
        link.submit(time.monotonic() + 5, post=post)  # its answer is never read
        stored = _wait_for_rows(database, group_id, 1)
        started["broker"].kill()
        started["broker"].start()
        deadline = time.monotonic() + RECOVERY_SECS
        while True:
            try:
                link.request(time.monotonic() + 2, "done", open_session=broker_pb2.OpenSession(
                    session_id="s1", account=alice, group_ids=[group_id]))
                posted = link.request(time.monotonic() + 2, "posted", post=post)
                break
            except BrokerProblem:
                assert time.monotonic() < deadline, "the restarted broker never answered"
    finally:
        link.close()
        context.term()
    assert (posted.seq, posted.ts_ms, posted.repeat) == (stored[0][0], stored[0][1], True)
    assert _rows(database, group_id) == stored, "stored once"


def _rows(database: Path, group: str) -> list[tuple[int, int]]:
    with sqlite3.connect(database) as db:
        return db.execute("SELECT seq, ts_ms FROM broker_messages WHERE group_id = ?", (group,)).fetchall()


def _wait_for_rows(database: Path, group: str, count: int) -> list[tuple[int, int]]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        rows = _rows(database, group)
        if len(rows) >= count:
            return rows
        time.sleep(0.02)
    raise AssertionError(f"the broker never stored {count} message(s) in {group}")
