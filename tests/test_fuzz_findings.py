"""What the fuzzers found, kept found: each case once, deterministic, on the shared stack."""

from __future__ import annotations

import asyncio

import grpc

from generic_grpc import method_without_stubs


async def test_a_seq_past_63_bits_is_refused_and_the_broker_keeps_serving(people, stack):
    """Found by tests/fuzz/test_grpc_fuzz.py (full run): ListMessages with before_seq or
    after_seq >= 2**63 reached SQLite as an integer it cannot hold, and the exception
    stopped the broker's loop, so the whole stack went down."""
    (alice,) = await people("alice")
    group = await alice.create_group()
    page = await alice.open_page()
    await page.post_and_ack(group, "still here")
    with grpc.insecure_channel(f"127.0.0.1:{stack.ports['broker-grpc']}") as channel:
        call, request = method_without_stubs(channel, "chorus.messages.v1.Messages", "ListMessages")
        for fields in ({"before_seq": 2**64 - 1}, {"after_seq": 2**63}):
            try:
                await asyncio.to_thread(call, request(group_id=group["id"], **fields), timeout=5)
            except grpc.RpcError as error:
                assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, (fields, error)
            else:
                raise AssertionError(f"{fields} was accepted")
        reply = await asyncio.to_thread(call, request(group_id=group["id"], after_seq=0), timeout=5)
    assert [m.text for m in reply.messages] == ["still here"]
    await page.post_and_ack(group, "and the page still posts")
