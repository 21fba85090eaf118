"""The compose fault suites' shared parts: how much traffic, and how a fault is injected
(tests/compose/test_faults.py on compose.yaml, test_cluster_faults.py on the cluster)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time

FULL = os.environ.get("CHORUS_FAULT_FULL") == "1"
# (people, groups, groups per person, senders, msgs/s, seconds down, runs per fault)
PEOPLE, GROUPS, PER_PERSON, SENDERS, RATE, DOWN_SECS, RUNS = (
    (200, 20, 2, 20, 200.0, 10.0, 3) if FULL else (40, 8, 2, 8, 40.0, 4.0, 1))
RECOVERY_LIMIT_SECS = 45.0  # fault over -> every sender posting again


def kill_9(stack, service: str):
    """SIGKILL the Chorus process in ``service``'s container; its restart policy brings it back."""
    async def inject() -> float:
        container = (await asyncio.to_thread(stack.run, "ps", "-q", service)).stdout.strip()
        init_pid = subprocess.run(["docker", "inspect", "-f", "{{.State.Pid}}", container],
                                  capture_output=True, text=True, check=True).stdout.strip()
        child = subprocess.run(["pgrep", "-P", init_pid], capture_output=True, text=True).stdout.split()
        os.kill(int(child[0]) if child else int(init_pid), signal.SIGKILL)
        return time.monotonic()
    return inject


def stop_for(stack, service: str, seconds: float):
    """Stop ``service`` (SIGTERM, as an operator or an orchestrator does), wait, start it again."""
    async def inject() -> float:
        await asyncio.to_thread(stack.run, "stop", "-t", "10", service)
        await asyncio.sleep(seconds)
        await asyncio.to_thread(stack.run, "start", service)
        return time.monotonic()
    return inject


def report(row: dict) -> None:
    path = os.environ.get("CHORUS_FAULT_REPORT")
    if path:
        with open(path, "a") as out:
            out.write(json.dumps(row) + "\n")
