"""The fuzz suites' stack: its own, with the limits raised (see fuzzing.py for why)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def fuzz_stack(start_stack):
    with start_stack({
        "CHORUS_WS_MESSAGES_PER_SEC": "1000000",
        "CHORUS_WS_MESSAGES_BURST": "1000000",
        "CHORUS_LOGIN_FAILURES_PER_IP": "1000000",
        "CHORUS_LOGIN_FAILURES_PER_ACCOUNT": "1000000",
        "CHORUS_ACCOUNT_POSTS_PER_SEC": "1000000",
        "CHORUS_ACCOUNT_POSTS_BURST": "1000000",
        "CHORUS_MAX_CONNECTIONS_PER_ADDRESS": "1000000",
        "CHORUS_MAX_WEBSOCKETS_PER_ADDRESS": "1000000",
        "CHORUS_MAX_SESSIONS_PER_ACCOUNT": "1000000",
        "CHORUS_REGISTRATIONS_PER_IP": "1000000",
    }) as stack:
        yield stack
