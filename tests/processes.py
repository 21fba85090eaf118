"""Start Chorus services one by one as real processes, the way compose runs them.

Unlike the `stack` fixture (`chorus up`, which stops everything when one
service dies), these let a test kill and restart a single service.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

START_TIMEOUT_SECS = 30
STOP_TIMEOUT_SECS = 10


class Service:
    """One `python -m chorus NAME ARGS...` process; its output goes to a log file."""

    def __init__(self, name: str, args: list[str], env: dict, log_dir: Path):
        self.name, self.args, self.env, self.log_dir = name, args, env, log_dir
        self.process: subprocess.Popen | None = None
        self.starts = 0

    def start(self) -> "Service":
        self.starts += 1
        log_path = self.log_dir / f"{self.name}.{self.starts}.log"
        self.process = subprocess.Popen([sys.executable, "-m", "chorus", self.name, *self.args],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=self.env)
        listening = threading.Event()

        def copy_log() -> None:
            with open(log_path, "wb") as log:
                for line in self.process.stderr:
                    log.write(line)
                    log.flush()
                    if b"listening" in line:
                        listening.set()
        threading.Thread(target=copy_log, daemon=True).start()
        deadline = time.monotonic() + START_TIMEOUT_SECS
        while not listening.wait(0.1):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} did not start:\n{log_path.read_text()}")
        return self

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


def service_env(token_key: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHORUS_") and k != "DATABASE_URL"}
    env["CHORUS_TOKEN_KEY"] = token_key
    return env
