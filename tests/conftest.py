"""Fixtures shared by every suite: the whole stack as real processes, and free ports.

The stack is `python -m chorus up` (exactly what a newcomer runs) on free
loopback ports with a fresh data directory, started once per test session;
tests isolate themselves by registering their own people and groups.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

STACK_START_TIMEOUT_SECS = 60


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Stack:
    base_url: str
    ws_url: str
    ports: dict
    data_dir: Path
    log_path: Path
    process: subprocess.Popen

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture(scope="session")
def stack(tmp_path_factory) -> Stack:
    root = tmp_path_factory.mktemp("stack")
    ports = {name: free_port() for name in
             ("http", "auth", "membership", "broker-router", "broker-pub")}
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("CHORUS_") and k != "DATABASE_URL"}
    log_path = root / "stack.log"
    command = [sys.executable, "-m", "chorus", "up", "--data-dir", str(root / "data"),
               *(arg for name, port in ports.items() for arg in (f"--{name}-port", str(port)))]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log, env=env)
    stack = Stack(f"http://127.0.0.1:{ports['http']}", f"ws://127.0.0.1:{ports['http']}/ws",
                  ports, root / "data", log_path, process)
    line = _wait_for_line(process, "Chorus is running", STACK_START_TIMEOUT_SECS)
    if line is None:
        process.kill()
        pytest.fail(f"chorus up did not start:\n{stack.log()}")
    yield stack
    process.send_signal(signal.SIGINT)
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        process.kill()
        pytest.fail(f"chorus up did not stop on SIGINT:\n{stack.log()}")


def _wait_for_line(process: subprocess.Popen, text: str, timeout_secs: float) -> str | None:
    deadline = time.monotonic() + timeout_secs
    os.set_blocking(process.stdout.fileno(), False)
    buffer = b""
    while time.monotonic() < deadline:
        chunk = process.stdout.read()
        if chunk:
            buffer += chunk
            for line in buffer.decode(errors="replace").splitlines():
                if text in line:
                    return line
        if process.poll() is not None:
            return None
        time.sleep(0.05)
    return None
