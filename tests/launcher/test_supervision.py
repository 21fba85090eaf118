"""`chorus up` keeps the stack alive: a service that dies is restarted on the same ports and
pages go on; one that fails at once, or keeps dying, stops the stack with a message that
names it and shows its last lines."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from chat import Api, Person, assert_delivered_to
from chorus.common.grpctls import ClientTls, channel as tls_channel
from conftest import free_port, wait_for_readiness
from processes import clean_env

RECOVERY_SECS = 10  # restart (0.5 s backoff) + Python start + the gateway's re-registration
EXIT_TIMEOUT_SECS = 60


def service_pid(up: subprocess.Popen, service: str) -> int | None:
    """The pid of `chorus SERVICE` among chorus up's children, or None while there is none."""
    children = subprocess.run(["pgrep", "-P", str(up.pid)], capture_output=True, text=True).stdout.split()
    for pid in map(int, children):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except FileNotFoundError:
            continue
        if argv[2:4] == [b"chorus", service.encode()]:
            return pid
    return None


def new_pid(up: subprocess.Popen, service: str, old: int, timeout_secs: float) -> int:
    deadline = time.monotonic() + timeout_secs
    while time.monotonic() < deadline:
        pid = service_pid(up, service)
        if pid not in (None, old):
            return pid
        time.sleep(0.05)
    raise AssertionError(f"{service} was not restarted within {timeout_secs} s")


async def post_until_acked(page, group, text: str, timeout_secs: float) -> dict:
    """Post ``text`` again and again until one is acknowledged (``unavailable`` meanwhile)."""
    deadline = asyncio.get_running_loop().time() + timeout_secs
    while True:
        ref = await page.post(group, text)
        frame = await page.answer(ref)
        if frame["op"] == "ack":
            return frame
        assert frame["code"] == "unavailable", frame
        assert asyncio.get_running_loop().time() < deadline, f"no ack within {timeout_secs} s"
        await asyncio.sleep(0.2)


async def test_a_page_posts_again_within_seconds_after_kill_9_of_the_broker(start_stack):
    # A post in flight when the broker dies is answered "unavailable" after the backend timeout:
    # 2 s here instead of 5, so that the measured time is the restart's.
    with start_stack({"CHORUS_BACKEND_TIMEOUT_SECS": "2"}) as stack:
        broker = service_pid(stack.process, "broker")
        async with aiohttp.ClientSession() as http:
            api = Api(http, stack.base_url)
            alice, bob = (await Person.register(api, stack.ws_url, "alice"),
                          await Person.register(api, stack.ws_url, "bob"))
            group = await alice.create_group()
            await bob.join(group)
            alice_page, bob_page = await alice.open_page(), await bob.open_page()
            await alice_page.post_and_ack(group, "before")
            await assert_delivered_to([bob_page], group, "before")

            os.kill(broker, signal.SIGKILL)
            started = asyncio.get_running_loop().time()
            ack = await post_until_acked(alice_page, group, "after", RECOVERY_SECS)
            took = asyncio.get_running_loop().time() - started
            await assert_delivered_to([bob_page], group, "after")
            assert ack["seq"] == 2, "the restarted broker continues the stored sequence"
            assert not alice_page.ws.closed and not bob_page.ws.closed, "the pages kept their sessions"
        assert service_pid(stack.process, "broker") not in (None, broker)
        assert stack.process.poll() is None, "chorus up is still running"
        log = stack.log()
        assert "chorus up: broker exited with code -9 (SIGKILL)" in log and "restarting it in" in log, log
        print(f"posting worked again {took:.1f} s after the kill")


def run_up(tmp_path: Path, *args: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "chorus", "up", "--data-dir", str(tmp_path / "data"),
         "--http-port", "0", "--auth-port", "0", "--membership-port", "0",
         "--broker-router-port", str(free_port()), "--broker-pub-port", "0", "--broker-grpc-port", "0", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=clean_env(env))


def test_a_service_that_fails_at_once_ends_chorus_up_naming_it_with_its_last_lines(tmp_path):
    up = run_up(tmp_path, env={"CHORUS_BROKER_DATABASE_URL": "mysql://db/chorus"})  # for the broker only
    try:
        out, err = up.communicate(timeout=EXIT_TIMEOUT_SECS)
    finally:
        up.kill()
    assert up.returncode == 1, err
    assert "chorus up: broker exited with code 2 while starting; stopping. Its last lines:" in err
    assert "    broker: unsupported database 'mysql'" in err
    assert "Chorus is running" not in out


def test_a_service_that_keeps_dying_stops_the_stack_naming_it(tmp_path):
    up = run_up(tmp_path, "--restart-limit", "1", "--restart-window-secs", "60", "--restart-backoff-secs", "0.1")
    try:
        ready = wait_for_readiness(up, timeout_secs=EXIT_TIMEOUT_SECS)
        assert ready is not None, "chorus up did not start"
        first = service_pid(up, "membership")
        os.kill(first, signal.SIGKILL)           # death 1 of at most 1: restarted
        second = new_pid(up, "membership", first, RECOVERY_SECS)
        assert_serving(ready["membership"], tmp_path / "data" / "keys", RECOVERY_SECS)  # on the same port as before
        others = [service_pid(up, name) for name in ("auth", "broker", "webgate")]
        os.kill(second, signal.SIGKILL)          # death 2: it keeps dying
        out, err = up.communicate(timeout=EXIT_TIMEOUT_SECS)
    finally:
        up.kill()
    assert up.returncode == 1, err
    assert "chorus up: membership exited with code -9 (SIGKILL)" in err and "restarting it in 0.1 s" in err
    assert ("chorus up: membership keeps dying (2 times within 60 s; the last time it exited with code -9 "
            "(SIGKILL)); stopping everything. Its last lines:") in err, err
    assert "    membership listening on 127.0.0.1:" in err.split("keeps dying")[1], "its last output is shown"
    assert not any(Path(f"/proc/{pid}").exists() and _running(pid) for pid in others), "the others stopped"


def assert_serving(address: str, keys: Path, timeout_secs: float) -> None:
    deadline = time.monotonic() + timeout_secs
    with tls_channel(address, ClientTls.load(keys / "auth")) as channel:  # any of the stack's certificates
        while True:
            try:
                health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=1)
                return
            except grpc.RpcError:
                assert time.monotonic() < deadline, f"nothing serves on {address}"
                time.sleep(0.1)


def _running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_every_service_cleanly_and_restarts_nothing(tmp_path, sig):
    up = run_up(tmp_path)
    try:
        assert wait_for_readiness(up, timeout_secs=EXIT_TIMEOUT_SECS) is not None, "chorus up did not start"
        services = [service_pid(up, name) for name in ("auth", "membership", "broker", "webgate")]
        up.send_signal(sig)
        _, err = up.communicate(timeout=EXIT_TIMEOUT_SECS)
    finally:
        up.kill()
    assert up.returncode == 0, err
    assert "restarting" not in err and "keeps dying" not in err
    assert not any(_running(pid) for pid in services)
