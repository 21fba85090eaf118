"""`chorus up`: the embedded default. Every service as its own process on
loopback, SQLite files under one data directory, one URL printed, and a clean
stop of everything on Ctrl-C (or when any service dies).

Each service runs exactly as compose runs it (`python -m chorus SERVICE`
with flags), so the embedded mode exercises the same code as a deployment.
The token signing key is generated once into DATA_DIR/token.key (mode 0600)
unless CHORUS_TOKEN_KEY or CHORUS_TOKEN_KEY_FILE is set.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from chorus.common.config import add_flag, default_data_dir, positive

__all__ = ["Settings", "add_arguments", "settings_from_args", "run", "ensure_token_key"]

TOKEN_KEY_BYTES = 32
STOP_GRACE_SECS = 10.0


@dataclass(frozen=True, kw_only=True)
class Settings:
    data_dir: Path
    host: str = "127.0.0.1"
    http_port: int = 8080
    auth_port: int = 50051
    membership_port: int = 50052
    broker_router_port: int = 5555
    broker_pub_port: int = 5556
    broker_grpc_port: int = 50053
    startup_timeout_secs: float = 30.0
    child_env: dict = field(default_factory=dict)


def add_arguments(parser: argparse.ArgumentParser, env: Mapping[str, str]) -> None:
    add_flag(parser, "--data-dir", env=env, var="CHORUS_DATA_DIR", default=str(default_data_dir(env)),
             help="where the SQLite files and the token key live")
    add_flag(parser, "--host", env=env, var="CHORUS_HOST", default="127.0.0.1",
             help="address every service listens on")
    for flag, var, default in (
        ("--http-port", "CHORUS_HTTP_PORT", 8080),
        ("--auth-port", "CHORUS_AUTH_PORT", 50051),
        ("--membership-port", "CHORUS_MEMBERSHIP_PORT", 50052),
        ("--broker-router-port", "CHORUS_BROKER_ROUTER_PORT", 5555),
        ("--broker-pub-port", "CHORUS_BROKER_PUB_PORT", 5556),
        ("--broker-grpc-port", "CHORUS_BROKER_GRPC_PORT", 50053),
    ):
        add_flag(parser, flag, env=env, var=var, default=default, help=f"port for {flag[2:-5]}")
    add_flag(parser, "--startup-timeout-secs", env=env, var="CHORUS_STARTUP_TIMEOUT_SECS",
             default=30.0, help="how long the services may take to start")


def settings_from_args(args: argparse.Namespace, env: Mapping[str, str]) -> Settings:
    ports = {}
    for name in ("http_port", "auth_port", "membership_port", "broker_router_port", "broker_pub_port",
                 "broker_grpc_port"):
        port = positive(getattr(args, name), name="--" + name.replace("_", "-"))
        if port > 65535:
            raise ValueError(f"--{name.replace('_', '-')} {port} is out of range 1-65535")
        ports[name] = port
    if len(set(ports.values())) != len(ports):
        raise ValueError("every service needs its own port; two of the port flags are equal")
    return Settings(
        data_dir=Path(args.data_dir).expanduser(),
        host=args.host,
        startup_timeout_secs=positive(args.startup_timeout_secs, name="--startup-timeout-secs", kind=float),
        child_env=dict(env),
        **ports,
    )


def ensure_token_key(data_dir: Path) -> Path:
    """DATA_DIR/token.key, created with a random key and mode 0600 when missing."""
    path = data_dir / "token.key"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(TOKEN_KEY_BYTES * 2))
    return path


def _commands(s: Settings) -> dict[str, list[str]]:
    chorus = [sys.executable, "-m", "chorus"]
    router = f"tcp://{s.host}:{s.broker_router_port}"
    pub = f"tcp://{s.host}:{s.broker_pub_port}"
    data = ["--data-dir", str(s.data_dir)]
    return {
        "auth": [*chorus, "auth", "--listen", f"{s.host}:{s.auth_port}", *data],
        "membership": [*chorus, "membership", "--listen", f"{s.host}:{s.membership_port}", *data,
                       "--broker-router", router],
        "broker": [*chorus, "broker", "--router", router, "--pub", pub, *data,
                   "--grpc-listen", f"{s.host}:{s.broker_grpc_port}",
                   "--membership", f"{s.host}:{s.membership_port}"],
        "webgate": [*chorus, "webgate", "--listen", f"{s.host}:{s.http_port}",
                    "--auth", f"{s.host}:{s.auth_port}",
                    "--membership", f"{s.host}:{s.membership_port}",
                    "--broker-router", router, "--broker-pub", pub],
    }


def run(settings: Settings) -> int:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    env = dict(settings.child_env)
    if not env.get("CHORUS_TOKEN_KEY") and not env.get("CHORUS_TOKEN_KEY_FILE"):
        env["CHORUS_TOKEN_KEY_FILE"] = str(ensure_token_key(settings.data_dir))
    stopping: list[int] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, _frame: stopping.append(signum))

    children: dict[str, subprocess.Popen] = {}
    try:
        for name, command in _commands(settings).items():
            # Own session: a terminal's Ctrl-C reaches only us; we stop the children in order.
            children[name] = subprocess.Popen(command, env=env, start_new_session=True,
                                              preexec_fn=_stop_with_parent(os.getpid()))
        ports = {"auth": settings.auth_port, "membership": settings.membership_port,
                 "broker": settings.broker_router_port, "webgate": settings.http_port}
        deadline = time.monotonic() + settings.startup_timeout_secs
        for name, port in ports.items():
            failure = _wait_listening(settings.host, port, children, deadline, stopping)
            if failure:
                print(f"chorus up: {failure}", file=sys.stderr)
                return 1
        print(f"Chorus is running at http://{settings.host}:{settings.http_port}/  "
              f"(data in {settings.data_dir}; Ctrl-C stops)", flush=True)
        while not stopping:
            for name, child in children.items():
                if child.poll() is not None:
                    print(f"chorus up: {name} exited with code {child.returncode}; stopping",
                          file=sys.stderr)
                    return 1
            time.sleep(0.2)
        return 0
    finally:
        _stop_all(children)


def _wait_listening(host: str, port: int, children, deadline: float, stopping) -> str | None:
    while time.monotonic() < deadline:
        if stopping:
            return "interrupted while starting"
        for name, child in children.items():
            if child.poll() is not None:
                return f"{name} exited with code {child.returncode} while starting"
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return None
        except OSError:
            time.sleep(0.1)
    return f"nothing listening on {host}:{port} after the startup timeout"


def _stop_with_parent(parent_pid: int):
    """For the child, before exec: be sent SIGTERM when `chorus up` dies, even by kill -9,
    so no service outlives it holding its port (Linux's PR_SET_PDEATHSIG; elsewhere a no-op)."""
    def arrange() -> None:
        if not sys.platform.startswith("linux"):
            return
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)
        if os.getppid() != parent_pid:  # the parent died before prctl took effect
            os._exit(1)
    return arrange


def _stop_all(children: dict[str, subprocess.Popen]) -> None:
    """SIGTERM in reverse start order (webgate first, so pages get 'going away'), then wait."""
    for child in reversed(list(children.values())):
        if child.poll() is None:
            child.terminate()
    deadline = time.monotonic() + STOP_GRACE_SECS
    for child in children.values():
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
