"""`chorus up`: the embedded default. Every service as its own process, SQLite files under
one data directory, one URL printed; a service that dies is restarted (supervisor.py);
Ctrl-C or SIGTERM stops everything, the page first.

Each service runs exactly as compose runs it (`python -m chorus SERVICE` with flags),
so the embedded mode exercises the same code as a deployment. The token signing key
is generated once into DATA_DIR/token.key (mode 0600) unless CHORUS_TOKEN_KEY or
CHORUS_TOKEN_KEY_FILE is set, and the internal traffic's keys into DATA_DIR/keys
(chorus.common.keys; secrets 0600), one folder per service.

Output: the services' logs on stderr; on stdout, once every service is ready, the
readiness line (chorus.common.readiness) with every address, then
"Chorus is running at URL".
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from chorus.common import readiness
from chorus.launcher.child import Child, StartFailed
from chorus.launcher.config import Settings
from chorus.common.keys import ensure_keys
from chorus.common.keysdir import KeysError
from chorus.launcher.plan import (addresses, command, initial_ports, keys_root, learned, page_url, server_names,
                                  services)
from chorus.launcher.supervisor import Death, Supervisor

__all__ = ["run", "ensure_token_key"]

TOKEN_KEY_BYTES = 32


def ensure_token_key(data_dir: Path) -> Path:
    """DATA_DIR/token.key, created with a random key and mode 0600 when missing."""
    path = data_dir / "token.key"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(TOKEN_KEY_BYTES * 2))
    return path


def run(settings: Settings) -> int:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    env = dict(settings.child_env)
    if not env.get("CHORUS_TOKEN_KEY") and not env.get("CHORUS_TOKEN_KEY_FILE"):
        env["CHORUS_TOKEN_KEY_FILE"] = str(ensure_token_key(settings.data_dir))
    try:
        ensure_keys(keys_root(settings), server_names=server_names(settings))
    except KeysError as exc:
        _say(f"cannot make the internal traffic's keys: {exc}")
        return 1
    stopping = threading.Event()  # a signal, or a service that keeps dying
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, _frame: stopping.set())
    if settings.database_url:
        env["DATABASE_URL"] = settings.database_url
    children = {name: Child(name, env) for name in services(settings)}
    supervisors: list[Supervisor] = []
    failures: list[str] = []

    def give_up(child: Child, death: Death, deaths: int) -> None:
        failures.append(f"{child.name} keeps dying ({deaths} times within {settings.restart_window_secs:g} s; "
                        f"the last time it {death.how}); stopping everything. "
                        f"Its last lines:\n{child.last_lines()}")
        stopping.set()

    try:
        ports = initial_ports(settings)
        for name, child in children.items():
            child.start(command(name, settings, ports, sys.executable))
            try:
                ready = child.wait_ready(settings.startup_timeout_secs, stopping)
            except StartFailed as failed:
                _say("interrupted while starting" if stopping.is_set() else
                     f"{failed}; stopping. Its last lines:\n{child.last_lines()}")
                return 1
            ports.update(learned(name, ready))
            child.command = command(name, settings, ports, sys.executable)  # a restart binds the same ports
        readiness.announce("up", settings.ready_file, **addresses(settings, ports))
        print(f"Chorus is running at {page_url(settings, ports)}/  (data in {settings.data_dir}; Ctrl-C stops)",
              flush=True)
        for child in children.values():
            supervisors.append(Supervisor(child, settings, stopping, give_up))
            supervisors[-1].start()
        while not stopping.wait(0.5):  # wakes for signals too
            pass
        if failures:
            _say(failures[0])
            return 1
        return 0
    finally:
        stopping.set()
        _stop_all(children, settings.stop_grace_secs)
        for supervisor in supervisors:
            supervisor.join(settings.stop_grace_secs)


def _stop_all(children: dict[str, Child], grace_secs: float) -> None:
    """SIGTERM in reverse start order (webgate first, so pages get 'going away'), then wait;
    SIGKILL for whoever is still there after ``grace_secs``."""
    for child in reversed(list(children.values())):
        with child.lock:  # no supervisor (re)starts it meanwhile; they all see `stopping` after this
            child.terminate()
    deadline = time.monotonic() + grace_secs
    for child in children.values():
        if child.process is None:
            continue
        try:
            child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.process.kill()
            child.process.wait()


def _say(message: str) -> None:
    print(f"chorus up: {message}", file=sys.stderr, flush=True)
