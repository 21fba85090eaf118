"""A reader that stops reading is cut off; everyone else keeps receiving everything.

The slow reader is a raw socket with a tiny receive buffer that does the
WebSocket handshake (websockets' sans-I/O client) and then never reads, so
frames pile up in the gateway's transport until it passes
max_send_buffer_bytes (512 KiB in the test stack).
"""

from __future__ import annotations

import asyncio
import select
import socket

import aiohttp
import orjson
from websockets.client import ClientProtocol
from websockets.frames import Close
from websockets.protocol import State
from websockets.uri import parse_uri

from chat import Api, Person, assert_delivered_to

TEXT = "x" * 3900
# Loopback kernel buffers hold at most ~4.2 MB here (tcp_wmem max 4 MiB + a 4 KiB receive
# buffer); 2000 x 3.9 KB = 7.8 MB passes that plus the gateway's 512 KiB limit with room to spare.
MESSAGES = 2000
CUT_OFF_WAIT_SECS = 5.0  # the gateway gives a slow reader 2 s to take the close frame


def open_stalled_socket(ws_url: str, token: str) -> tuple[socket.socket, ClientProtocol]:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(10)
    uri = parse_uri(ws_url)
    sock.connect((uri.host, uri.port))
    protocol = ClientProtocol(uri)
    protocol.send_request(protocol.connect())
    sock.sendall(b"".join(protocol.data_to_send()))
    while protocol.state is not State.OPEN:
        data = sock.recv(65536)
        if not data:
            raise AssertionError("the server closed the socket during the handshake")
        protocol.receive_data(data)
        if protocol.handshake_exc is not None:
            raise protocol.handshake_exc
    protocol.send_text(orjson.dumps({"op": "auth", "token": token}))
    sock.sendall(b"".join(protocol.data_to_send()))
    while True:  # read until ready (sock's 10 s timeout bounds each wait), then stop reading for good
        data = sock.recv(65536)
        if not data:
            raise AssertionError(f"the server closed the socket before ready: {protocol.close_rcvd}")
        protocol.receive_data(data)
        if any(orjson.loads(e.data).get("op") == "ready" for e in protocol.events_received()
               if getattr(e, "data", None)):
            return sock, protocol


def drain(sock: socket.socket, protocol: ClientProtocol) -> Close | str:
    """Read what is left; the close frame the server sent, or how the connection ended."""
    try:
        while True:
            data = sock.recv(1 << 20)
            if not data:
                return "eof"
            protocol.receive_data(data)
            protocol.events_received()
            if protocol.close_rcvd is not None:
                return protocol.close_rcvd
    except ConnectionResetError:
        return "reset"


async def test_a_reader_that_stops_reading_is_cut_off_and_others_get_every_message(stack):
    async with aiohttp.ClientSession() as http:
        api = Api(http, stack.base_url)
        alice = await Person.register(api, stack.ws_url, "alice")
        bob = await Person.register(api, stack.ws_url, "bob")
        sloth = await Person.register(api, stack.ws_url, "sloth")
        group = await alice.create_group()
        await bob.join(group)
        await sloth.join(group)
        sender, reader = await alice.open_page(), await bob.open_page()
        sock, protocol = await asyncio.to_thread(open_stalled_socket, stack.ws_url, sloth.token)

        received = 0

        async def read_everything():
            nonlocal received
            while not (done.is_set() and received >= sent):
                try:
                    frame = await reader.expect("message", group=group["id"], timeout=0.2)
                except AssertionError:  # nothing within 0.2 s: check whether we are done
                    assert not reader.ws.closed, f"the reading member was cut off: {reader.ws.close_code}"
                    continue
                assert frame["text"] == TEXT
                received += 1

        sent, done = 0, asyncio.Event()
        reading = asyncio.create_task(read_everything())
        for sent in range(1, MESSAGES + 1):
            await sender.post_and_ack(group, TEXT)
            sender.seen.clear()  # the sender's own copies; not under test here
        done.set()
        await reading
        assert received == sent, "the reading member got every message"
        assert await asyncio.to_thread(_peer_closes, sock, CUT_OFF_WAIT_SECS), \
            f"the stalled socket was still open {CUT_OFF_WAIT_SECS}s after {sent} messages"
        ending = await asyncio.to_thread(drain, sock, protocol)
        assert ending == "reset" or (ending.code, ending.reason) == (1013, "slow consumer"), ending
        sock.close()
        await sender.post_and_ack(group, "life goes on")
        await assert_delivered_to([reader], group, "life goes on")


def _peer_closes(sock: socket.socket, within_secs: float) -> bool:
    """Whether the server closes or resets its side (FIN or RST) in time, without reading data."""
    poller = select.poll()
    poller.register(sock, select.POLLRDHUP | select.POLLHUP | select.POLLERR)
    return bool(poller.poll(int(within_secs * 1000)))
