"""Fixtures for the auth tests: a store on the shared ``engine`` (tests/conftest.py),
which runs each storage test on SQLite and on PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import Engine

from chorus.auth.storage import AuthStore, migrate
from chorus.common.db import create_db_engine, sqlite_url


@pytest.fixture
def store(engine: Engine) -> AuthStore:
    migrate(engine)
    return AuthStore(engine)


@pytest.fixture
def accounts(tmp_path) -> AuthStore:
    """The AuthStore a test's gRPC server uses: a real SQLite file."""
    engine = create_db_engine(sqlite_url(tmp_path, "auth"))
    migrate(engine)
    yield AuthStore(engine)
    engine.dispose()
