"""With its backends down, the gateway answers clearly instead of hanging or crashing."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import aiohttp
import pytest

from conftest import free_port


@pytest.fixture
def lonely_webgate(tmp_path):
    """A webgate whose auth, membership and broker addresses have nothing listening."""
    port = free_port()
    dead = [free_port() for _ in range(4)]
    log_path = tmp_path / "webgate.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "chorus", "webgate", "--listen", f"127.0.0.1:{port}",
             "--auth", f"127.0.0.1:{dead[0]}", "--membership", f"127.0.0.1:{dead[1]}",
             "--broker-router", f"tcp://127.0.0.1:{dead[2]}", "--broker-pub", f"tcp://127.0.0.1:{dead[3]}",
             "--backend-timeout-secs", "1"],
            stdout=log, stderr=subprocess.STDOUT, env={"PATH": "/usr/bin:/bin"})
    if not _wait_until_listening(port):
        process.kill()
        pytest.fail(log_path.read_text())
    yield f"http://127.0.0.1:{port}"
    process.terminate()
    assert process.wait(10) == 0, log_path.read_text()


def _wait_until_listening(port: int) -> bool:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


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
