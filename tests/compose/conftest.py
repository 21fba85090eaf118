"""The compose stack (compose.yaml, as an operator runs it) for end-to-end tests.

Started once per test session under a private project name, on free loopback
ports, with throw-away secrets; torn down with its volumes afterwards. Needs a
Docker engine, a compose command and the base images: ./run-tests sets them
up (scripts/docker-setup.sh) where it may. Without them these tests skip,
except under CI=true, where they fail.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from chat import Api
from chorus.common.grpcauth import parse_permissions
from chorus.common.keys import ensure_keys, issue_backend
from conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
UP_TIMEOUT_SECS = 600      # includes building the images the first time
HEALTHY_TIMEOUT_SECS = 120


def compose_command() -> list[str] | None:
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"],
                                                 capture_output=True).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


def _why_not_runnable() -> str | None:
    command = compose_command()
    if command is None:
        return "no docker compose command (run scripts/docker-setup.sh)"
    if subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
        return "no Docker engine answers (run scripts/docker-setup.sh)"
    return None


IMAGES = ("auth", "membership", "broker", "webgate")  # compose.yaml's chorus-NAME images


@dataclass
class ComposeStack:
    command: list[str]
    env: dict
    ports: dict
    backend_keys: Path  # a backend's certificate for the published gRPC port (`chorus keys --backend`)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['http']}"

    def ws_url(self, via: str = "http") -> str:
        return f"ws://127.0.0.1:{self.ports[via]}/ws"

    def run(self, *args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run([*self.command, *args], cwd=ROOT, env=self.env, capture_output=True,
                              text=True, timeout=timeout, check=check)

    def wait_healthy(self, *names: str, timeout: float = HEALTHY_TIMEOUT_SECS) -> None:
        """Until every named endpoint answers /healthz (bounded)."""
        deadline = time.monotonic() + timeout
        pending = list(names)
        while pending:
            if time.monotonic() > deadline:
                logs = self.run("logs", "--tail=40", check=False).stdout
                raise AssertionError(f"not healthy within {timeout} s: {pending}\n{logs}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.ports[pending[0]]}/healthz",
                                            timeout=2) as response:
                    if response.status == 200:
                        pending.pop(0)
                        continue
            except OSError:
                pass
            time.sleep(0.5)


@pytest.fixture(scope="session")
def compose_stack(tmp_path_factory) -> Iterator[ComposeStack]:
    yield from _compose_stack(tmp_path_factory, ["compose.yaml", "tests/compose/compose.test.yaml"])


@pytest.fixture(scope="module")
def compose_cluster_stack(tmp_path_factory) -> Iterator[ComposeStack]:
    """The same with compose.cluster.yaml: three brokers sharing the groups (for one module, so
    it never runs beside the other stack)."""
    yield from _compose_stack(tmp_path_factory, ["compose.yaml", "compose.cluster.yaml",
                                                 "tests/compose/compose.test.yaml"])


def _compose_stack(tmp_path_factory, files: list[str]) -> Iterator[ComposeStack]:
    problem = _why_not_runnable()
    if problem:
        if os.environ.get("CI") == "true":
            pytest.fail(f"compose tests cannot run under CI: {problem}")
        pytest.skip(problem)
    secrets_dir = tmp_path_factory.mktemp("secrets")
    (secrets_dir / "token_key").write_text(secrets.token_hex(32))
    (secrets_dir / "db_password").write_text(secrets.token_hex(24))
    ensure_keys(secrets_dir / "keys")  # what `chorus keys secrets/keys` makes
    backend_keys = issue_backend(secrets_dir / "keys", "tests", parse_permissions("membership.JoinGroup"))
    for path in secrets_dir.rglob("*"):  # the services run as uid 10001 and read them through bind mounts
        path.chmod(0o755 if path.is_dir() else 0o644)
    ports = {"http": free_port(), "webgate-a": free_port(), "webgate-b": free_port(),
             "membership": free_port()}
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHORUS_") and k != "DATABASE_URL"}
    project = f"chorustest{secrets.token_hex(4)}"
    env.update({
        "COMPOSE_PROJECT_NAME": project,
        # Images of this checkout only: another checkout's tests on this machine build the same names.
        "CHORUS_VERSION": project,
        "COMPOSE_FILE": os.pathsep.join(str(ROOT / name) for name in files),
        "CHORUS_SECRETS_DIR": str(secrets_dir),
        "CHORUS_HTTP_PORT": str(ports["http"]),
        "CHORUS_TEST_WEBGATE_A_PORT": str(ports["webgate-a"]),
        "CHORUS_TEST_WEBGATE_B_PORT": str(ports["webgate-b"]),
        "CHORUS_TEST_MEMBERSHIP_PORT": str(ports["membership"]),
        # Every simulated person connects from this one machine (the full fault run has 200).
        "CHORUS_MAX_WEBSOCKETS_PER_ADDRESS": "1000",
    })
    stack = ComposeStack(compose_command(), env, ports, backend_keys)
    try:
        stack.run("up", "-d", "--build", timeout=UP_TIMEOUT_SECS)
        stack.wait_healthy("webgate-a", "webgate-b", "http")
        yield stack
    except subprocess.CalledProcessError as exc:
        state = stack.run("ps", check=False).stdout
        logs = stack.run("logs", "--tail=15", check=False).stdout
        raise AssertionError(f"compose up failed:\n{exc.stderr[-3000:]}\n{state}\n{logs}") from None
    finally:
        stack.run("down", "-v", "--remove-orphans", "--timeout", "10", timeout=180, check=False)
        subprocess.run(["docker", "image", "rm", *(f"chorus-{s}:{project}" for s in IMAGES)],
                       capture_output=True, timeout=120, check=False)


@pytest.fixture
async def compose_api(compose_stack) -> Iterator[Api]:
    # No cap on open connections (aiohttp's default is 100): the fault suite holds hundreds of pages.
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        yield Api(http, compose_stack.base_url)


@pytest.fixture
async def compose_cluster_api(compose_cluster_stack) -> Iterator[Api]:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        yield Api(http, compose_cluster_stack.base_url)
