"""Stopping: SIGTERM on a webgate closes its pages with 1001 "going away", so they reconnect
at once; `chorus up` killed outright takes its services with it."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import aiohttp

from chat import Api, Person
from conftest import free_port, wait_for_readiness
from processes import clean_env


async def test_sigterm_on_the_webgate_tells_open_pages_it_is_going_away(services):
    started, base_url = services
    async with aiohttp.ClientSession() as http:
        api = Api(http, base_url)
        alice = await Person.register(api, base_url.replace("http", "ws") + "/ws", "alice")
        page = await alice.open_page()
        started["webgate"].stop()
        msg = await page.ws.receive(timeout=10)
        assert (msg.type, msg.data, msg.extra) == (aiohttp.WSMsgType.CLOSE, 1001, "going away")
        started["webgate"].start()  # the fixture stops every service again at the end


def test_services_do_not_outlive_chorus_up_killed_with_sigkill(tmp_path):
    """kill -9 of `chorus up` gives its handlers no chance; the services must still go
    (they would hold their ports and the data directory otherwise)."""
    up = subprocess.Popen([sys.executable, "-m", "chorus", "up", "--data-dir", str(tmp_path / "data"),
                           "--http-port", "0", "--auth-port", "0", "--membership-port", "0",
                           "--broker-router-port", str(free_port()), "--broker-pub-port", "0",
                           "--broker-grpc-port", "0"],
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=clean_env())
    try:
        assert wait_for_readiness(up, timeout_secs=60) is not None, "chorus up did not start"
        services = [int(p) for p in subprocess.run(["pgrep", "-P", str(up.pid)], capture_output=True,
                                                   text=True).stdout.split()]
        assert len(services) == 4
    finally:
        up.kill()
        up.wait(10)
    deadline = time.monotonic() + 15
    while any(_alive(pid) for pid in services) and time.monotonic() < deadline:
        time.sleep(0.2)
    survivors = [pid for pid in services if _alive(pid)]
    for pid in survivors:  # not to leave them running when this fails
        os.kill(pid, 9)
    assert not survivors, "services outlived chorus up"


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ", 1)[1][0] != "Z"  # a zombie has exited
    except FileNotFoundError:
        return False
