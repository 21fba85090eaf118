"""Alembic migrations: every service's schema comes from its migrations, and they match its models.

Runs on SQLite and on PostgreSQL (CHORUS_TEST_POSTGRES_URL; see conftest.py).
"""

from __future__ import annotations

import importlib
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import inspect, text
from sqlmodel import SQLModel

from chorus.common.db import create_db_engine, sqlite_url
from chorus.common.migrations import schema_differences, upgrade

SERVICES = ["auth", "membership", "broker"]


def schema_of(service: str):
    return importlib.import_module(f"chorus.{service}.storage").SCHEMA


@pytest.mark.parametrize("service", SERVICES)
def test_migrations_build_exactly_what_the_models_describe(engine, service):
    schema = schema_of(service)
    upgrade(engine, schema)
    # A model changed without a new revision (scripts/new_migration.py) shows up here.
    assert schema_differences(engine, schema) == []
    assert set(inspect(engine).get_table_names()) == {t.name for t in schema.tables} | {schema.version_table}


@pytest.mark.parametrize("service", SERVICES)
def test_a_database_made_before_migrations_is_adopted_with_its_rows(engine, service, tmp_path):
    schema = schema_of(service)
    # How Chorus made tables before: create_all of the tables it had then, which are the first
    # revision's (tables added since come from later revisions).
    first_tables = _tables_at(schema, schema.first_revision, tmp_path)
    SQLModel.metadata.create_all(engine, tables=[t for t in schema.tables if t.name in first_tables])
    first = schema.tables[0]
    row = {c.name: _sample(c) for c in first.columns}
    with engine.begin() as connection:
        connection.execute(first.insert().values(**row))
    upgrade(engine, schema)
    with engine.connect() as connection:
        assert connection.execute(text(f"SELECT count(*) FROM {first.name}")).scalar() == 1
        version = connection.execute(text(f"SELECT version_num FROM {schema.version_table}")).scalar()
    assert version == _head(schema)


def test_services_sharing_one_database_keep_separate_histories(engine):
    for service in SERVICES:
        upgrade(engine, schema_of(service))
    upgrade(engine, schema_of("auth"))  # again: nothing to do, nothing breaks
    names = set(inspect(engine).get_table_names())
    assert {f"alembic_version_{s}" for s in SERVICES} <= names
    for service in SERVICES:
        assert schema_differences(engine, schema_of(service)) == []


def _tables_at(schema, revision: str, tmp_path) -> set[str]:
    scratch = create_db_engine(sqlite_url(tmp_path, f"scratch-{schema.service}"))
    try:
        upgrade(scratch, schema, revision)
        return set(inspect(scratch).get_table_names()) - {schema.version_table}
    finally:
        scratch.dispose()


def _head(schema) -> str:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(schema.config()).get_current_head()


def _sample(column):
    from datetime import datetime, timezone

    kind = type(column.type).__name__.lower()
    if "datetime" in kind:
        return datetime(2026, 1, 1, tzinfo=timezone.utc)
    if "int" in kind:
        return 1
    return "x"


@pytest.mark.postgres
@pytest.mark.parametrize("service", SERVICES)
def test_replicas_migrating_one_postgres_database_at_once_all_start(postgres_engine, service):
    """The advisory lock serialises them (without it the replicas' DDL transactions
    block one another and this test does not finish)."""
    schema = schema_of(service)
    start = threading.Barrier(4)

    def migrate_as_a_replica():
        start.wait(timeout=10)
        upgrade(postgres_engine, schema)

    with ThreadPoolExecutor(4) as pool:
        for future in [pool.submit(migrate_as_a_replica) for _ in range(4)]:
            future.result(timeout=60)
    assert schema_differences(postgres_engine, schema) == []
