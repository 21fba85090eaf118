"""Nothing is missed: history, resume after a reconnect, read markers, presence.
Against the real stack (`chorus up`), through HTTP and WebSockets."""

from __future__ import annotations

import asyncio


from chat import assert_delivered_to
from conftest import RESUME_MAX_MESSAGES


async def post_many(page, group, texts) -> list[int]:
    return [(await page.post_and_ack(group, text))["seq"] for text in texts]


async def messages_until_resumed(page) -> list[dict]:
    frames = []
    while True:
        frame = await page.next_frame()
        if frame["op"] == "resumed":
            return frames
        frames.append(frame)


async def test_history_pages_newest_first_for_members_only(people, api):
    alice, bob, eve = await people("alice", "bob", "eve")
    group = await alice.create_group()
    await bob.join(group)
    page = await alice.open_page()
    seqs = await post_many(page, group, [f"m{i}" for i in range(1, 8)])
    path = f"/api/groups/{group['id']}/messages"

    latest = await api.ok("GET", path + "?limit=3", token=bob.token)
    assert [m["seq"] for m in latest["messages"]] == seqs[:-4:-1] and latest["more"] is True
    assert latest["messages"][0]["text"] == "m7" and latest["messages"][0]["from"] == alice.user
    older = await api.ok("GET", path + f"?before={seqs[4]}&limit=3", token=bob.token)
    assert [m["text"] for m in older["messages"]] == ["m4", "m3", "m2"] and older["more"] is True
    newer = await api.ok("GET", path + f"?after={seqs[4]}", token=bob.token)
    assert [m["text"] for m in newer["messages"]] == ["m6", "m7"] and newer["more"] is False
    from_start = await api.ok("GET", path + "?after=0&limit=4", token=bob.token)
    assert [m["text"] for m in from_start["messages"]] == ["m1", "m2", "m3", "m4"] and from_start["more"]

    for query, status in [("", 403), ("?limit=0", 400), ("?limit=101", 400), ("?before=x", 400),
                          ("?before=1&after=1", 400), ("?after=-1", 400)]:
        who = eve if status == 403 else bob
        got, body = await api.call("GET", path + query, token=who.token)
        assert got == status and body["error"]["message"], (query, body)
    got, _ = await api.call("GET", "/api/groups/g_unknown/messages", token=bob.token)
    assert got == 404
    await bob.leave(group)
    got, _ = await api.call("GET", path, token=bob.token)
    assert got == 403, "a member who left can no longer read the history"


async def test_a_page_that_reconnects_gets_exactly_what_it_missed_in_order(people):
    alice, bob = await people("alice", "bob")
    one, two = await alice.create_group(), await alice.create_group()
    await bob.join(one)
    await bob.join(two)
    alice_page, bob_page = await alice.open_page(), await bob.open_page()
    [seen] = await post_many(alice_page, one, ["before the drop"])
    await assert_delivered_to([bob_page], one, "before the drop")
    await bob_page.close()

    missed_one = await post_many(alice_page, one, [f"one-{i}" for i in range(5)])
    missed_two = await post_many(alice_page, two, [f"two-{i}" for i in range(3)])

    bob_page = await bob.open_page()
    states = {g["id"]: g for g in bob_page.ready["groups"]}
    assert states[one["id"]]["last_seq"] == missed_one[-1]
    await bob_page.send({"op": "resume", "since": {one["id"]: seen, two["id"]: 0}})
    first = await bob_page.next_frame()  # the replay has begun: live messages from now on race it
    live = asyncio.create_task(post_many(alice_page, one, [f"live-{i}" for i in range(5)]))
    frames = [first] + await messages_until_resumed(bob_page)
    await live
    frames += [await bob_page.expect("message", group=one["id"]) for _ in range(5 - _count(frames, "live-"))]
    by_group = {g: [f["seq"] for f in frames if f["group"] == g] for g in (one["id"], two["id"])}
    assert by_group[one["id"]] == list(range(seen + 1, seen + 11)), "no gap, no duplicate, in order"
    assert by_group[two["id"]] == missed_two
    assert [f["text"] for f in frames if f["group"] == two["id"]] == ["two-0", "two-1", "two-2"]


def _count(frames, prefix):
    return sum(1 for f in frames if f["text"].startswith(prefix))


async def test_too_much_missed_means_reset_for_that_group_only(people):
    alice, bob = await people("alice", "bob")
    busy, quiet = await alice.create_group(), await alice.create_group()
    await bob.join(busy)
    await bob.join(quiet)
    alice_page = await alice.open_page()
    await post_many(alice_page, busy, [f"b{i}" for i in range(RESUME_MAX_MESSAGES + 1)])
    [quiet_seq] = await post_many(alice_page, quiet, ["q"])
    bob_page = await bob.open_page()
    await bob_page.send({"op": "resume", "since": {busy["id"]: 0, quiet["id"]: 0}})
    frames = await messages_until_resumed(bob_page)
    assert {"op": "reset", "group": busy["id"]} in frames
    assert [(f["group"], f["seq"]) for f in frames if f["op"] == "message"] == [(quiet["id"], quiet_seq)]


async def test_unread_counts_follow_the_person_across_devices(people, api):
    alice, bob = await people("alice", "bob")
    group = await alice.create_group()
    await bob.join(group)
    alice_page = await alice.open_page()
    seqs = await post_many(alice_page, group, ["a", "b", "c"])
    me = await api.ok("GET", "/api/me", token=bob.token)
    assert me["groups"] == [{**group, "last_seq": seqs[-1], "unread": 3}]

    phone = await bob.open_page()
    assert phone.ready["groups"][0]["unread"] == 3
    await phone.send({"op": "read", "group": group["id"], "seq": seqs[1]})
    assert await phone.expect("read") == {"op": "read", "group": group["id"], "seq": seqs[1], "unread": 1}
    await phone.send({"op": "read", "group": group["id"], "seq": seqs[0]})
    assert (await phone.expect("read"))["seq"] == seqs[1], "a read marker never moves backwards"

    laptop = await bob.open_page()
    assert laptop.ready["groups"][0]["unread"] == 1
    me = await api.ok("GET", "/api/me", token=bob.token)
    assert me["groups"][0]["unread"] == 1
    await laptop.send({"op": "read", "group": "g_not_mine", "seq": 1})
    assert (await laptop.expect("error"))["code"] == "not_member"


async def test_members_show_who_is_online(people, api):
    alice, bob, eve = await people("alice", "bob", "eve")
    group = await alice.create_group()
    await bob.join(group)
    page = await alice.open_page()
    path = f"/api/groups/{group['id']}/members"
    body = await api.ok("GET", path, token=bob.token)
    assert sorted((m["username"], m["online"]) for m in body["members"]) == [
        (alice.username, True), (bob.username, False)]
    await page.close()
    for _ in range(50):  # the gateway unregisters the closed page asynchronously
        body = await api.ok("GET", path, token=bob.token)
        if not any(m["online"] for m in body["members"]):
            break
        await asyncio.sleep(0.1)
    assert not any(m["online"] for m in body["members"])
    got, _ = await api.call("GET", path, token=eve.token)
    assert got == 403
