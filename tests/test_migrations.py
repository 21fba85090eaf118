"""Alembic migrations: every service's schema comes from its migrations, and they match its models.

Runs on SQLite and on PostgreSQL (CHORUS_TEST_POSTGRES_URL; see conftest.py).
"""

from __future__ import annotations

import importlib
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import MetaData, Table, inspect, text

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
def test_a_database_made_before_migrations_is_adopted_with_its_rows(engine, service):
    schema = schema_of(service)
    _tables_as_chorus_made_them_before_migrations(engine, schema)
    first = Table(schema.tables[0].name, MetaData(), autoload_with=engine)
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


def _tables_as_chorus_made_them_before_migrations(engine, schema) -> None:
    """The tables of the first revision (which created exactly what create_all used to), with no
    version table: once later revisions change the models, create_all of today's models is not it."""
    upgrade(engine, schema, revision=schema.first_revision)
    with engine.begin() as connection:
        connection.execute(text(f"DROP TABLE {schema.version_table}"))


def _head(schema) -> str:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(schema.config()).get_current_head()


def _sample(column):
    from datetime import datetime, timezone

    kind = type(column.type).__name__.lower()
    if "datetime" in kind or "timestamp" in kind:  # as declared, or as PostgreSQL reflects it
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
