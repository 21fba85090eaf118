"""Keeping one service of `chorus up` alive: restart it when it dies, give up when it keeps dying.

The policy (tenacity runs it; nothing here counts attempts or sleeps by hand):
- A service that dies soon after (re)starting (sooner than ``restart_window_secs``)
  is restarted after ``restart_backoff_secs``, doubling each time up to
  ``restart_backoff_max_secs``. One that had been up longer is restarted at once,
  and its backoff starts over.
- More than ``restart_limit`` deaths within ``restart_window_secs``: the service
  keeps dying; ``on_give_up`` is told (which stops the whole stack).
- Every death is logged with its exit code, every restart with its wait.
- Nothing is restarted once ``stopping`` is set; a wait ends early then.
"""

from __future__ import annotations

import collections
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from tenacity import RetryCallState, Retrying, retry_if_result, wait_exponential

from chorus.launcher.child import Child, StartFailed, describe_exit
from chorus.launcher.config import Settings

__all__ = ["Death", "Supervisor"]


@dataclass(frozen=True)
class Death:
    """How one run of a service ended."""

    code: int | None
    uptime_secs: float
    how: str  # "exited with code -9 (SIGKILL)", "did not report ready within 30 s"


class Supervisor:
    """One thread per service, from the end of `chorus up`'s start until its stop."""

    def __init__(self, child: Child, settings: Settings, stopping: threading.Event,
                 on_give_up: Callable[[Child, Death, int], None]):
        """``on_give_up(child, last death, deaths within the window)`` is called from this
        supervisor's thread, once, when the service keeps dying."""
        self.child, self._settings, self._stopping, self._on_give_up = child, settings, stopping, on_give_up
        self._deaths: collections.deque[float] = collections.deque()  # times, within the window
        self._gave_up = False
        self._thread = threading.Thread(target=self._run, name=f"{child.name}-supervisor", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout_secs: float) -> None:
        self._thread.join(timeout_secs)

    def _run(self) -> None:
        try:
            self._supervise()
        except Exception as exc:  # e.g. fork failed: no service left behind unwatched
            self._gave_up = True
            self._on_give_up(self.child, Death(None, 0.0, f"could not be restarted: {exc!r}"), len(self._deaths))

    def _supervise(self) -> None:
        while not self._stopping.is_set():
            retrying = Retrying(
                retry=retry_if_result(self._died_soon),
                wait=wait_exponential(multiplier=self._settings.restart_backoff_secs,
                                      max=self._settings.restart_backoff_max_secs),
                stop=self._keeps_dying,
                sleep=self._stopping.wait,
                before_sleep=self._log_restart,
                retry_error_callback=self._give_up,
            )
            death = retrying(self._run_once)
            if death is None or self._gave_up:
                return
            _log(f"{self.child.name} {death.how} after {death.uptime_secs:.0f} s up; restarting it now")

    def _run_once(self) -> Death | None:
        """Run the service (starting it again if it is not running) until it dies: how, or
        None when it was stopped on purpose."""
        with self.child.lock:
            if self._stopping.is_set():
                return None
            if not self.child.running():
                self.child.start(self.child.command)
        try:
            self.child.wait_ready(self._settings.startup_timeout_secs, self._stopping)
        except StartFailed as failed:
            return self._died(failed.code, str(failed).removeprefix(f"{self.child.name} "))
        code = self.child.wait_exit()
        return self._died(code, describe_exit(code))

    def _died(self, code: int | None, how: str) -> Death | None:
        if self._stopping.is_set():
            return None
        now = time.monotonic()
        self._deaths.append(now)
        return Death(code, now - self.child.started_at, how)

    def _died_soon(self, death: Death | None) -> bool:
        return death is not None and death.uptime_secs < self._settings.restart_window_secs

    def _keeps_dying(self, state: RetryCallState) -> bool:
        window_start = time.monotonic() - self._settings.restart_window_secs
        while self._deaths and self._deaths[0] < window_start:
            self._deaths.popleft()
        return len(self._deaths) > self._settings.restart_limit

    def _log_restart(self, state: RetryCallState) -> None:
        death = state.outcome.result()
        _log(f"{self.child.name} {death.how} after {death.uptime_secs:.1f} s; "
             f"restarting it in {state.upcoming_sleep:.1f} s")

    def _give_up(self, state: RetryCallState) -> None:
        self._gave_up = True
        self._on_give_up(self.child, state.outcome.result(), len(self._deaths))


def _log(message: str) -> None:
    print(f"chorus up: {message}", file=sys.stderr, flush=True)
