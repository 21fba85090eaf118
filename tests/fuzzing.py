"""Fuzzing helpers: the case budget, the figures each run leaves, a person to fuzz as,
and the check that every service survived. The stack is tests/fuzz/conftest.py's.

``CHORUS_FUZZ_EXAMPLES`` is the number of cases each interface (HTTP API,
WebSocket, gRPC) gets: 300 by default, the CI run, with fixed seeds so CI is
repeatable; ``CHORUS_FUZZ_EXAMPLES=10000`` is the full run recorded in
docs/reliability.md, with fresh random seeds. With ``CHORUS_FUZZ_REPORT=FILE``
each test appends its figures to FILE as one JSON object a line.

That stack is separate from the shared one so that its limits (raised here:
fuzzers send fast and fail logins on purpose) and its accounts never touch
other tests, and so a crash it provokes is seen here and nowhere else.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass

import grpc
import requests
from hypothesis import HealthCheck, Phase, settings

from chat import unique
from chorus.common.grpctls import ClientTls, channel
from generic_grpc import assert_serving

EXAMPLES = int(os.environ.get("CHORUS_FUZZ_EXAMPLES", "300"))
FULL_RUN = EXAMPLES > 300
REPORT = os.environ.get("CHORUS_FUZZ_REPORT")

PASSWORD = "correct horse battery"
HTTP_TIMEOUT_SECS = 10

GRPC_SERVICES = {  # stack port name -> the services it serves
    "auth": ["chorus.auth.v1.Auth"],
    "membership": ["chorus.membership.v1.Membership"],
    "broker-grpc": ["chorus.messages.v1.Messages"],
}


def fuzz_settings(max_examples: int) -> settings:
    return settings(
        max_examples=max(1, max_examples),
        deadline=None,            # real processes: timing varies, a slow case is not a bug here
        database=None,            # nothing written into the work tree
        derandomize=not FULL_RUN,
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
        print_blob=True,
    )


@dataclass
class Figures:
    """What one fuzz test saw, as docs/reliability.md reports it."""

    interface: str
    cases: int = 0
    server_errors: int = 0        # HTTP 5xx, gRPC INTERNAL/UNKNOWN/UNAVAILABLE
    broken_connections: int = 0   # a WebSocket closed by a frame that should not close it
    crashes: int = 0              # a service process gone, or a traceback in its log

    def record(self) -> None:
        if REPORT:
            with open(REPORT, "a") as report:
                report.write(json.dumps({**asdict(self), "examples_setting": EXAMPLES}) + "\n")


def tracebacks(stack) -> int:
    return stack.log().count("Traceback")


def assert_stack_alive(stack, figures: Figures, tracebacks_before: int) -> None:
    """Every service still runs and answers, and none logged an unexpected error."""
    if stack.process.poll() is not None:  # `chorus up` stops when any service dies
        figures.crashes += 1
    else:
        for port_name, services in GRPC_SERVICES.items():
            # any certificate of the stack may ask for health: auth's own, as its container's check does
            with channel(f"127.0.0.1:{stack.ports[port_name]}", ClientTls.load(stack.keys / "auth")) as health:
                for service in services:
                    assert_serving(health, service)
    figures.crashes += tracebacks(stack) - tracebacks_before
    assert figures.crashes == 0, f"{figures}:\n{stack.log()[-5000:]}"


class Fuzzer:
    """A person on the fuzz stack (through the real HTTP API) with a group of their own."""

    def __init__(self, stack, name: str):
        self.base_url = stack.base_url
        self.http = requests.Session()
        self.username = unique(name)
        self._post("/api/register", {"username": self.username, "password": PASSWORD})
        self.token = self.login()
        self.user = self._me["user"]
        self.group_id = self._post("/api/groups", {"name": unique(name)},
                                   headers=self.auth(self.token))["group"]["id"]

    def login(self) -> str:
        """A new token (an argon2 check: ~0.3 s)."""
        self._me = self._post("/api/login", {"username": self.username, "password": PASSWORD})
        return self._me["token"]

    @staticmethod
    def auth(token: str) -> dict:
        return {"Authorization": f"Bearer {token}"}

    def _post(self, path: str, body: dict, headers=None) -> dict:
        response = self.http.post(self.base_url + path, json=body, headers=headers, timeout=HTTP_TIMEOUT_SECS)
        response.raise_for_status()
        return response.json()
