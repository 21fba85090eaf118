"""The restart policy of `chorus up`, with a scripted child instead of processes: when it
restarts, how long it waits, when it gives up, and that a stop restarts nothing."""

from __future__ import annotations

import argparse
import threading
import time

import pytest

from chorus.launcher.child import StartFailed
from chorus.launcher.config import Settings, add_arguments, settings_from_args
from chorus.launcher.supervisor import Death, Supervisor


def settings(*argv: str) -> Settings:
    parser = argparse.ArgumentParser()
    add_arguments(parser, {})
    return settings_from_args(parser.parse_args(["--data-dir", "/nonexistent", *argv]), {})


class ScriptedChild:
    """Runs ``runs`` in turn, each (uptime in seconds, exit code) or "fails to start"; after
    the last one it stays up until the supervisor is stopped, and ``done`` is set."""

    def __init__(self, runs: list, stopping: threading.Event):
        self.name, self.command, self.lock = "broker", ["chorus", "broker"], threading.Lock()
        self._runs, self._stopping = list(runs), stopping
        self.starts = 0
        self.started_at = time.monotonic()
        self.done = threading.Event()
        self._current = self._next()
        self._alive = True

    def _next(self):
        if not self._runs:
            self.done.set()
            return (0.0, None)
        return self._runs.pop(0)

    def running(self) -> bool:
        return self._alive

    def start(self, command: list[str]) -> None:
        assert command == self.command, "a restart runs the same command (same ports)"
        self.starts += 1
        self._alive = True
        self._current = self._next()

    def wait_ready(self, timeout_secs: float, stopping: threading.Event) -> dict:
        if self._current == "fails to start":
            self._alive = False
            raise StartFailed("broker exited with code 2 while starting", 2)
        return {}

    def wait_exit(self) -> int:
        uptime, code = self._current
        self.started_at = time.monotonic() - uptime
        if code is None:
            self._stopping.wait()
            code = 0
        self._alive = False
        return code


def supervise(runs: list, *argv: str) -> tuple[ScriptedChild, list]:
    """Supervise a scripted child until it is given up or its script ends; returns the child
    and the give-ups, (child, last death, deaths within the window) each."""
    stopping = threading.Event()
    child = ScriptedChild(runs, stopping)
    gave_up: list = []

    def give_up(*args) -> None:
        gave_up.append(args)
        stopping.set()
    supervisor = Supervisor(child, settings(*argv), stopping, give_up)
    supervisor.start()
    deadline = time.monotonic() + 10
    while not (gave_up or child.done.is_set()) and time.monotonic() < deadline:
        time.sleep(0.01)
    stopping.set()
    supervisor.join(10)
    return child, gave_up


@pytest.fixture
def logged(capsys):
    return lambda: [line.removeprefix("chorus up: ") for line in capsys.readouterr().err.splitlines()]


def test_a_quick_death_is_restarted_after_a_wait_that_doubles_up_to_the_most(logged):
    child, gave_up = supervise([(0.2, -9), (0.2, 1), (0.2, 1), (0.2, 1)], "--restart-backoff-secs", "0.1",
                               "--restart-backoff-max-secs", "0.4", "--restart-limit", "5")
    assert child.starts == 4 and not gave_up
    assert logged() == [
        "broker exited with code -9 (SIGKILL) after 0.2 s; restarting it in 0.1 s",
        "broker exited with code 1 after 0.2 s; restarting it in 0.2 s",
        "broker exited with code 1 after 0.2 s; restarting it in 0.4 s",
        "broker exited with code 1 after 0.2 s; restarting it in 0.4 s",
    ]


def test_one_that_keeps_dying_is_given_up_naming_the_last_death():
    child, gave_up = supervise([(0.0, 1)] * 10, "--restart-backoff-secs", "0.01", "--restart-limit", "3")
    assert len(gave_up) == 1
    given_up_child, death, deaths = gave_up[0]
    assert given_up_child is child and deaths == 4, "more than 3 deaths within the window"
    assert (death.code, death.how) == (1, "exited with code 1") and death.uptime_secs < 1
    assert child.starts == 3, "no restart after giving up"


def test_failing_to_start_again_counts_as_a_death():
    _, gave_up = supervise([(0.0, -9)] + ["fails to start"] * 5, "--restart-backoff-secs", "0.01",
                           "--restart-limit", "2")
    assert len(gave_up) == 1 and gave_up[0][1] == Death(2, gave_up[0][1].uptime_secs,
                                                        "exited with code 2 while starting")


def test_one_that_was_up_for_the_window_is_restarted_at_once(logged):
    child, gave_up = supervise([(120.0, -9), (120.0, -9), (120.0, -9)], "--restart-limit", "1",
                               "--restart-window-secs", "60", "--restart-backoff-secs", "5")
    assert not gave_up and child.starts == 3
    assert logged() == ["broker exited with code -9 (SIGKILL) after 120 s up; restarting it now"] * 3


def test_nothing_is_restarted_once_stopping(logged):
    stopping = threading.Event()
    child = ScriptedChild([(0.0, None)], stopping)
    supervisor = Supervisor(child, settings(), stopping, lambda *args: pytest.fail("gave up"))
    supervisor.start()
    time.sleep(0.1)
    stopping.set()
    supervisor.join(5)
    assert child.starts == 0 and logged() == []
