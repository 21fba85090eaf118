"""Fixtures for the membership tests: stores on the shared ``engine`` (tests/conftest.py),
which runs each storage test on SQLite and on PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import Engine

from chorus.membership.storage import MembershipStore, migrate


@pytest.fixture
def make_store(engine: Engine):
    """``make_store(**limits)``: a MembershipStore on the test's database, tables created."""
    migrate(engine)
    return lambda **limits: MembershipStore(engine, **limits)


@pytest.fixture
def store(make_store) -> MembershipStore:
    return make_store()
