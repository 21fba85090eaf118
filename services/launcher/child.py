"""One service process of `chorus up`: started, watched for its readiness line, stopped.

- Its stdout and stderr are one pipe that a thread reads line by line: the
  readiness line (chorus.common.readiness) is taken, every other line is passed
  on to our stderr and kept among the last ``TAIL_LINES``, for the message when
  it dies.
- Its own session, so a terminal's Ctrl-C reaches only `chorus up`, which stops
  the services in order; and PR_SET_PDEATHSIG, so it is sent SIGTERM when the
  thread that started it dies, even by kill -9 of `chorus up` (the threads that
  start services live as long as `chorus up`).
"""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping

from chorus.common import readiness

__all__ = ["Child", "StartFailed", "describe_exit", "TAIL_LINES"]

TAIL_LINES = 20
_READER_DRAIN_SECS = 2.0  # after an exit, for its last lines to arrive


class StartFailed(Exception):
    """The process exited, or stayed silent, before its readiness line."""

    def __init__(self, message: str, code: int | None):
        super().__init__(message)
        self.code = code


def describe_exit(code: int) -> str:
    """``exited with code 2``, ``exited with code -9 (SIGKILL)``."""
    if code < 0:
        try:
            return f"exited with code {code} ({signal.Signals(-code).name})"
        except ValueError:
            pass
    return f"exited with code {code}"


class Child:
    def __init__(self, name: str, env: Mapping[str, str]):
        self.name, self._env = name, dict(env)
        self.command: list[str] = []
        self.process: subprocess.Popen | None = None
        self.started_at = 0.0
        self.tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
        self.lock = threading.Lock()  # start and stop exclude each other
        self._ready: dict | None = None
        self._got_ready = threading.Event()
        self._reader: threading.Thread | None = None

    def start(self, command: list[str]) -> None:
        self.command = command
        self.tail.clear()
        self._ready, self._got_ready = None, threading.Event()
        self.process = subprocess.Popen(command, env=self._env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, start_new_session=True,
                                        preexec_fn=_stop_with_parent(os.getpid()))
        self.started_at = time.monotonic()
        self._reader = threading.Thread(target=self._read, args=(self.process, self._got_ready),
                                        name=f"{self.name}-output", daemon=True)
        self._reader.start()

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait_ready(self, timeout_secs: float, stopping: threading.Event) -> dict:
        """The readiness object; StartFailed when the process exits first, or is silent too long."""
        deadline = time.monotonic() + timeout_secs
        while not self._got_ready.wait(0.05):
            if self.process.poll() is not None:
                self._drain()
                raise StartFailed(f"{self.name} {describe_exit(self.process.returncode)} while starting",
                                  self.process.returncode)
            if stopping.is_set():
                raise StartFailed(f"interrupted while {self.name} was starting", None)
            if time.monotonic() > deadline:
                self.process.kill()
                self.process.wait()
                self._drain()
                raise StartFailed(f"{self.name} did not report ready within {timeout_secs:g} s", None)
        return self._ready

    def wait_exit(self) -> int:
        code = self.process.wait()
        self._drain()
        return code

    def terminate(self) -> None:
        if self.running():
            self.process.terminate()

    def last_lines(self) -> str:
        return "".join(f"    {line}\n" for line in self.tail) or "    (no output)\n"

    def _read(self, process: subprocess.Popen, got_ready: threading.Event) -> None:
        for raw in process.stdout:
            ready = readiness.parse_line(raw)
            if ready is not None and not got_ready.is_set():
                self._ready = ready
                got_ready.set()
                continue
            try:
                sys.stderr.buffer.write(raw)
                sys.stderr.flush()
            except (OSError, ValueError):
                pass  # our stderr is gone (closed terminal); keep reading so the child never blocks
            self.tail.append(raw.decode(errors="replace").rstrip("\n"))
        process.stdout.close()

    def _drain(self) -> None:
        if self._reader is not None:
            self._reader.join(_READER_DRAIN_SECS)


def _load_prctl():
    """libc's prctl, looked up before any fork: the child must not import or load anything."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    return ctypes.CDLL(None, use_errno=True).prctl


_PRCTL = _load_prctl()
_PR_SET_PDEATHSIG = 1


def _stop_with_parent(parent_pid: int):
    """For the child, before exec: be sent SIGTERM when its parent dies, even by kill -9, so no
    service outlives `chorus up` holding its port (Linux's PR_SET_PDEATHSIG; elsewhere a no-op)."""
    def arrange() -> None:
        if _PRCTL is None:
            return
        _PRCTL(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent_pid:  # the parent died before prctl took effect
            os._exit(1)
    return arrange
