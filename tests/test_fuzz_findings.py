"""What the fuzzers found, kept found: each case once, deterministic, on the shared stack."""

from __future__ import annotations

import asyncio

import aiohttp
import grpc

from chorus.common.grpctls import channel
from generic_grpc import backend_tls, method_without_stubs


async def test_a_seq_past_63_bits_is_refused_and_the_broker_keeps_serving(people, stack):
    """Found by tests/fuzz/test_grpc_fuzz.py (full run): ListMessages with before_seq or
    after_seq >= 2**63 reached SQLite as an integer it cannot hold, and the exception
    stopped the broker's loop, so the whole stack went down."""
    (alice,) = await people("alice")
    group = await alice.create_group()
    page = await alice.open_page()
    await page.post_and_ack(group, "still here")
    with channel(f"127.0.0.1:{stack.ports['broker-grpc']}",
                 backend_tls(stack.keys, "reader", "messages.ListMessages")) as open_channel:
        call, request = method_without_stubs(open_channel, "chorus.messages.v1.Messages", "ListMessages")
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


async def test_a_refused_first_frame_closes_with_a_valid_reason_whatever_it_quoted(stack, api):
    """Found by tests/fuzz/test_ws_fuzz.py (full run): the 4001 close reason quotes the bad
    field and was cut at 120 bytes, sometimes inside a character; a client must fail a
    connection whose close reason is not UTF-8, so it never saw the 4001."""
    group_id = "0" * 10 + "€" * 60  # its quote crosses the cut inside a three-byte character
    ws = await api.http.ws_connect(stack.ws_url)
    await ws.send_json({"op": "resume", "since": {group_id: 1}})
    msg = await ws.receive(timeout=5)
    assert msg.type == aiohttp.WSMsgType.CLOSE, msg
    assert msg.data == 4001 and "bad group id" in msg.extra
