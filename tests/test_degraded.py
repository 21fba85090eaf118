"""With its backends down, the gateway answers clearly instead of hanging or crashing."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys

import aiohttp
import pytest

from conftest import wait_for_readiness


@pytest.fixture
def lonely_webgate(tmp_path):
    """A webgate whose auth, membership and broker addresses have nothing listening."""
    with contextlib.ExitStack() as held:
        dead = [_bound_not_listening(held) for _ in range(4)]  # refused for as long as we hold them
        log_path = tmp_path / "webgate.log"
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "chorus", "webgate", "--listen", "127.0.0.1:0",
                 "--auth", f"127.0.0.1:{dead[0]}", "--membership", f"127.0.0.1:{dead[1]}",
                 "--broker-router", f"tcp://127.0.0.1:{dead[2]}", "--broker-pub", f"tcp://127.0.0.1:{dead[3]}",
                 "--backend-timeout-secs", "1", "--insecure-plaintext"],
                stdout=subprocess.PIPE, stderr=log, env={"PATH": "/usr/bin:/bin"})
        ready = wait_for_readiness(process, timeout_secs=20)
        if ready is None:
            process.kill()
            process.wait()
            pytest.fail(log_path.read_text())
        yield ready["http"]
        process.terminate()
        assert process.wait(10) == 0, log_path.read_text()


def _bound_not_listening(held: contextlib.ExitStack) -> int:
    sock = held.enter_context(socket.socket())
    sock.bind(("127.0.0.1", 0))
    return sock.getsockname()[1]


async def test_backends_down_means_503_and_a_retry_close_not_a_hang(lonely_webgate):
    async with aiohttp.ClientSession() as http:
        async with http.post(lonely_webgate + "/api/login",
                             json={"username": "someone", "password": "long enough pw"}) as response:
            assert response.status == 503
            body = await response.json()
            assert body["error"] == {"code": "unavailable",
                                     "message": "the auth service is unavailable, try again"}
        ws = await http.ws_connect(lonely_webgate.replace("http", "ws") + "/ws")
        await ws.send_str('{"op": "auth", "token": "whatever"}')
        msg = await ws.receive(timeout=10)
        assert msg.type == aiohttp.WSMsgType.CLOSE
        assert (msg.data, msg.extra) == (1013, "service unavailable")
        async with http.get(lonely_webgate + "/") as response:
            assert response.status == 200, "the page itself is still served"
