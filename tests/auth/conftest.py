"""Fixtures for the auth tests: a store on the shared ``engine`` (tests/conftest.py),
which runs each storage test on SQLite and on PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import Engine

from chorus.auth.storage import AuthStore, migrate


@pytest.fixture
def store(engine: Engine) -> AuthStore:
    migrate(engine)
    return AuthStore(engine)
