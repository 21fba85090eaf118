"""Other backends change memberships and post messages over gRPC, with no copy
of our stubs (reflection only), and live pages follow at once."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from chat import Person, assert_delivered_to, assert_nothing_arrives
from generic_grpc import backend_tls, call_without_stubs

LIVE_WITHIN_SECS = 1.0  # the promise for changes made by other backends


def call(stack, port: int, service: str, method: str, **fields):
    """One call as a backend whose certificate allows everything."""
    return call_without_stubs(f"127.0.0.1:{port}", service, method, tls=backend_tls(stack.keys), **fields)


async def test_a_join_and_leave_by_another_backend_reach_live_pages_within_a_second(api, stack):
    alice, bob = await Person.register(api, stack.ws_url, "alice"), await Person.register(api, stack.ws_url, "bob")
    group = await alice.create_group()
    alice_page, bob_page = await alice.open_page(), await bob.open_page()
    membership = stack.ports["membership"]

    await asyncio.to_thread(call, stack, membership, "chorus.membership.v1.Membership", "JoinGroup",
                            group_id=group["id"], account_id=bob.user["id"])
    joined = await bob_page.expect("joined", timeout=LIVE_WITHIN_SECS)
    assert joined["group"] == group
    await alice_page.post_and_ack(group, "hello bob")
    await assert_delivered_to([bob_page], group, "hello bob")

    await asyncio.to_thread(call, stack, membership, "chorus.membership.v1.Membership", "LeaveGroup",
                            group_id=group["id"], account_id=bob.user["id"])
    await bob_page.expect("left", timeout=LIVE_WITHIN_SECS)
    await alice_page.post_and_ack(group, "bob is gone")
    await assert_nothing_arrives(bob_page)


async def test_a_backend_posts_as_a_system_sender_and_it_is_stored_and_delivered(api, stack):
    alice = await Person.register(api, stack.ws_url, "alice")
    group = await alice.create_group()
    page = await alice.open_page()
    reply = await asyncio.to_thread(call, stack, stack.ports["broker-grpc"], "chorus.messages.v1.Messages",
                                    "PostMessage", group_id=group["id"], sender_name="Billing",
                                    text="Your invoice is ready")
    [frame] = await assert_delivered_to([page], group, "Your invoice is ready")
    assert frame["system"] is True  # shown as a bot, never as a person
    assert frame["seq"] == reply.seq and frame["from"] == {"id": "system", "username": "Billing",
                                                          "display_name": "Billing"}
    history = await api.ok("GET", f"/api/groups/{group['id']}/messages", token=alice.token)
    assert history["messages"][0]["text"] == "Your invoice is ready" and history["messages"][0]["system"] is True
    with pytest.raises(grpc.RpcError) as info:
        await asyncio.to_thread(call, stack, stack.ports["broker-grpc"], "chorus.messages.v1.Messages",
                                "PostMessage", group_id="g_nope", sender_name="Billing", text="x")
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
