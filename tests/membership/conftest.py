"""Fixtures for the membership tests: a real database engine per backend, and stores on it.

The ``engine`` fixture runs each storage test twice: on a SQLite file in
tmp_path, and on PostgreSQL in a fresh schema that is dropped afterwards.
PostgreSQL comes from $CHORUS_TEST_POSTGRES_URL (default below); when it is
unreachable those runs are skipped locally but fail when $CI is "true", so CI
cannot go green without having tested PostgreSQL.
"""

from __future__ import annotations

import os
import uuid
from urllib.parse import quote

import psycopg
import pytest
from sqlalchemy.engine import Engine, make_url

from chorus.common.db import create_db_engine, sqlite_url
from chorus.membership.storage import MembershipStore, create_tables

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
POSTGRES_CONNECT_TIMEOUT_SECS = 3


def _libpq_url(url: str) -> str:
    """``url`` as plain libpq understands it (no SQLAlchemy ``+driver`` suffix)."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def _with_search_path(url: str, schema: str) -> str:
    # libpq's "options" travels through SQLAlchemy's URL query into psycopg.connect,
    # the same as connect_args={"options": ...}, while keeping create_db_engine in the path.
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}options={quote(f'-csearch_path={schema}')}"


@pytest.fixture(scope="session")
def postgres_url() -> str:
    url = os.environ.get("CHORUS_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)
    try:
        with psycopg.connect(_libpq_url(url), connect_timeout=POSTGRES_CONNECT_TIMEOUT_SECS):
            pass
    except psycopg.Error as exc:
        shown = make_url(url).render_as_string(hide_password=True)
        reason = f"PostgreSQL unreachable at {shown} (set CHORUS_TEST_POSTGRES_URL): {exc}"
        if os.environ.get("CI") == "true":
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    return url


@pytest.fixture
def postgres_schema(postgres_url: str):
    """A fresh, empty schema name; dropped with everything in it after the test."""
    schema = f"membership_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_libpq_url(postgres_url), autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
    yield schema
    with psycopg.connect(_libpq_url(postgres_url), autocommit=True) as admin:
        admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
def postgres_engine(postgres_url: str, postgres_schema: str):
    engine = create_db_engine(_with_search_path(postgres_url, postgres_schema))
    yield engine
    engine.dispose()  # before the schema drop, which would wait on open connections' locks


@pytest.fixture
def sqlite_engine(tmp_path):
    engine = create_db_engine(sqlite_url(tmp_path, "membership"))
    yield engine
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request) -> Engine:
    return request.getfixturevalue(f"{request.param}_engine")


@pytest.fixture
def make_store(engine: Engine):
    """``make_store(**limits)``: a MembershipStore on the test's database, tables created."""
    create_tables(engine)
    return lambda **limits: MembershipStore(engine, **limits)


@pytest.fixture
def store(make_store) -> MembershipStore:
    return make_store()
