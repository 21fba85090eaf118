"""Start Chorus services one by one as real processes, the way compose runs them.

Unlike the `stack` fixture (`chorus up`, which restarts a service that dies by
itself), these let a test kill and restart a single service. A service is
started when it has written its readiness line (chorus.common.readiness) on
stdout; addresses given with port 0 are then pinned to the ports it bound, so a
restart binds the same ones and the other services reconnect to it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from chorus.common import readiness

START_TIMEOUT_SECS = 30
STOP_TIMEOUT_SECS = 10

# For each service: the key of its readiness object -> the flag that sets that address.
_ADDRESS_FLAGS = {
    "auth": {"grpc": "--listen"},
    "membership": {"grpc": "--listen"},
    "broker": {"router": "--router", "pub": "--pub", "grpc": "--grpc-listen"},
    "webgate": {"http": "--listen"},
}


class Service:
    """One `python -m chorus NAME ARGS...` process; its logs (stderr) go to a log file."""

    def __init__(self, name: str, args: list[str], env: dict, log_dir: Path, label: str | None = None):
        self.name, self.args, self.env, self.log_dir = name, list(args), env, log_dir
        self.label = label or name  # names its log files: several brokers or gateways in one test
        self.process: subprocess.Popen | None = None
        self.ready: dict | None = None  # the readiness object of the current run
        self.starts = 0

    def start(self) -> "Service":
        self.starts += 1
        log_path = self.log_dir / f"{self.label}.{self.starts}.log"
        with open(log_path, "wb") as log:
            self.process = subprocess.Popen([sys.executable, "-m", "chorus", self.name, *self.args],
                                            stdout=subprocess.PIPE, stderr=log, env=self.env)
        got: list[dict] = []
        reported = threading.Event()

        def read_stdout(process: subprocess.Popen) -> None:
            for line in process.stdout:  # read to the end: the pipe must never fill
                ready = readiness.parse_line(line)
                if ready is not None and not got:
                    got.append(ready)
                    reported.set()
        threading.Thread(target=read_stdout, args=(self.process,), daemon=True).start()
        deadline = time.monotonic() + START_TIMEOUT_SECS
        while not reported.wait(0.1):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} did not start:\n{log_path.read_text()}")
        self.ready = got[0]
        self._pin_addresses()
        return self

    def address(self, key: str) -> str:
        """Where it serves, from its readiness line: ``address("grpc")`` -> ``"127.0.0.1:40123"``."""
        return self.ready[key]

    def _pin_addresses(self) -> None:
        for key, flag in _ADDRESS_FLAGS[self.name].items():
            if flag in self.args:
                self.args[self.args.index(flag) + 1] = self.ready[key].removeprefix("http://")

    def kill(self) -> None:
        """SIGKILL: the process gets no chance to clean up."""
        self.process.kill()
        self.process.wait(STOP_TIMEOUT_SECS)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT_SECS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def clean_env(extra_env: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment without any Chorus settings a developer may have exported."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHORUS_") and k != "DATABASE_URL"}
    return {**env, **(extra_env or {})}


def service_env(token_key: str) -> dict:
    return clean_env({"CHORUS_TOKEN_KEY": token_key})
