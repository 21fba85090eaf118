"""The whole product through its public interfaces: HTTP API and WebSocket,
against the real stack (`chorus up` as processes: auth, membership, broker, webgate)."""

from __future__ import annotations

import aiohttp
import pytest

from chat import assert_delivered_to, assert_nothing_arrives


async def test_a_person_in_two_groups_receives_both_groups_messages(people):
    alice, bob, carol = await people("alice", "bob", "carol")
    one, two = await alice.create_group(), await bob.create_group()
    await alice.join(two)
    await carol.join(one)
    page = await alice.open_page()
    assert {g["id"] for g in page.ready["groups"]} == {one["id"], two["id"]}
    carol_page, bob_page = await carol.open_page(), await bob.open_page()

    ack = await carol_page.post_and_ack(one, "hello group one")
    assert ack["group"] == one["id"] and ack["seq"] >= 1 and ack["ts"] > 0
    [frame] = await assert_delivered_to([page], one, "hello group one")
    assert frame["from"] == carol.user and frame["seq"] == ack["seq"]
    await bob_page.post_and_ack(two, "hello group two")
    await assert_delivered_to([page, bob_page], two, "hello group two")
    await assert_nothing_arrives(bob_page)  # bob is not in group one


async def test_every_member_and_every_session_receives_including_the_senders_other_tabs(people):
    alice, bob = await people("alice", "bob")
    group = await alice.create_group()
    await bob.join(group)
    alice_tab1, alice_tab2, bob_page = await alice.open_page(), await alice.open_page(), await bob.open_page()
    ack = await alice_tab1.post_and_ack(group, "to everyone")
    frames = await assert_delivered_to([alice_tab1, alice_tab2, bob_page], group, "to everyone")
    assert frames[0]["seq"] == ack["seq"]


async def test_sequence_numbers_increase_per_group(people):
    (alice,) = await people("alice")
    group = await alice.create_group()
    page = await alice.open_page()
    seqs = [(await page.post_and_ack(group, f"m{i}"))["seq"] for i in range(5)]
    assert seqs == list(range(seqs[0], seqs[0] + 5))


async def test_a_non_member_cannot_post_and_receives_nothing(people):
    alice, mallory = await people("alice", "mallory")
    group = await alice.create_group()
    alice_page, mallory_page = await alice.open_page(), await mallory.open_page()
    ref = await mallory_page.post(group, "let me in")
    error = await mallory_page.expect("error", ref=ref)
    assert error["code"] == "not_member"
    await assert_nothing_arrives(alice_page)
    await alice_page.post_and_ack(group, "members only")
    await assert_nothing_arrives(mallory_page)


async def test_joining_over_http_while_connected_starts_delivery_and_leaving_stops_it(people):
    alice, bob = await people("alice", "bob")
    group = await alice.create_group()
    alice_page, bob_page = await alice.open_page(), await bob.open_page()
    bob_second_tab = await bob.open_page()

    await bob.join(group)
    for page in (bob_page, bob_second_tab):
        joined = await page.expect("joined")
        assert joined["group"] == {"id": group["id"], "name": group["name"]}
    await alice_page.post_and_ack(group, "welcome bob")
    await assert_delivered_to([bob_page, bob_second_tab], group, "welcome bob")
    await bob_page.post_and_ack(group, "thanks")  # bob may post now too
    await assert_delivered_to([alice_page, bob_page, bob_second_tab], group, "thanks")

    await bob.leave(group)
    await bob_page.expect("left", group={"id": group["id"], "name": group["name"]})
    await alice_page.post_and_ack(group, "bye bob")
    await assert_nothing_arrives(bob_page)
    ref = await bob_page.post(group, "wait")
    assert (await bob_page.expect("error", ref=ref))["code"] == "not_member"


async def test_creating_a_group_shows_up_live_in_every_tab(people):
    (alice,) = await people("alice")
    page = await alice.open_page()
    group = await alice.create_group()
    assert (await page.expect("joined"))["group"]["id"] == group["id"]
    await page.post_and_ack(group, "first!")
    await assert_delivered_to([page], group, "first!")


@pytest.mark.parametrize("frame, code", [
    ("not json at all", "bad_json"),
    ("[1,2,3]", "bad_json"),
    ({"op": "fly"}, "unknown_op"),
    ({"op": "send", "text": "no group", "ref": "x"}, "invalid_argument"),
    ({"op": "send", "group": "g_unknown", "text": "hi", "ref": "x"}, "not_member"),
    ({"op": "send", "group": "GROUP", "text": "x" * 4001, "ref": "x"}, "too_large"),
    ({"op": "send", "group": "GROUP", "text": "   ", "ref": "x"}, "invalid_argument"),
    ({"op": "auth", "token": "again"}, "unknown_op"),
])
async def test_bad_frames_get_an_error_and_the_connection_keeps_working(people, frame, code):
    (alice,) = await people("alice")
    group = await alice.create_group()
    page = await alice.open_page()
    if isinstance(frame, dict) and frame.get("group") == "GROUP":
        frame = {**frame, "group": group["id"]}
    await page.send(frame)
    error = await page.expect("error")
    assert error["code"] == code and error["message"]
    if isinstance(frame, dict) and "ref" in frame:
        assert error["ref"] == frame["ref"]
    await page.post_and_ack(group, "still connected")
    await assert_delivered_to([page], group, "still connected")


async def test_binary_frames_get_an_error_and_the_connection_keeps_working(people):
    (alice,) = await people("alice")
    page = await alice.open_page()
    await page.ws.send_bytes(b"\x00\x01")
    assert (await page.expect("error"))["code"] == "bad_json"
    await page.send({"op": "ping"})
    await page.expect("pong")


async def test_a_bad_token_closes_the_socket_with_4001(api, stack):
    ws = await api.http.ws_connect(stack.ws_url)
    await ws.send_str('{"op": "auth", "token": "forged.token.value"}')
    msg = await ws.receive(timeout=5)
    assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == 4001 and msg.extra == "unauthenticated"


async def test_a_socket_that_never_authenticates_is_closed_after_the_deadline(api, stack):
    ws = await api.http.ws_connect(stack.ws_url)
    msg = await ws.receive(timeout=10)
    assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == 4001 and msg.extra == "auth timeout"


async def test_a_first_frame_that_is_not_auth_closes_the_socket(api, stack):
    ws = await api.http.ws_connect(stack.ws_url)
    await ws.send_str('{"op": "send", "group": "g", "text": "hi"}')
    msg = await ws.receive(timeout=5)
    assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == 4001 and "auth" in msg.extra


async def test_a_frame_over_the_size_limit_closes_with_1009(people):
    (alice,) = await people("alice")
    page = await alice.open_page()
    await page.ws.send_str('{"op":"send","text":"' + "x" * 70_000 + '"}')
    code, _ = await page.closed()
    assert code == 1009


async def test_a_logged_out_token_can_no_longer_open_a_page(people, api):
    (alice,) = await people("alice")
    status, _ = await api.call("POST", "/api/logout", token=alice.token)
    assert status == 204
    status, body = await api.call("GET", "/api/me", token=alice.token)
    assert status == 401 and body["error"]["code"] == "unauthenticated"
    ws = await api.http.ws_connect(alice.ws_url)
    await ws.send_str(f'{{"op": "auth", "token": "{alice.token}"}}')
    msg = await ws.receive(timeout=5)
    assert msg.data == 4001
