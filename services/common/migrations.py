"""Schema migrations with Alembic, one migration history per service.

Each service keeps its revisions in its own package (``chorus.<service>.migrations``)
and its own version table (``alembic_version_<service>``), so the three
services can share one database or use three. Services call ``upgrade`` on
start; ``create_all`` is never run against a real database.

A database made by Chorus before migrations existed (tables present, no
version table) is adopted: it is stamped at the first revision, which created
exactly those tables, and then upgraded like any other.

On PostgreSQL an advisory lock serialises migrations, so replicas starting
together do not race each other through the same revision.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources

from alembic import command
from alembic.config import Config
from alembic.runtime.environment import EnvironmentContext
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Table, inspect, text
from sqlalchemy.engine import Connection, Engine
from sqlmodel import SQLModel

__all__ = ["Schema", "upgrade", "run_env", "schema_differences"]


@dataclass(frozen=True)
class Schema:
    """One service's migration history: where its revisions live and which tables it owns."""

    service: str                 # "auth", "membership", "broker"
    tables: Sequence[Table]
    first_revision: str = "0001"

    @property
    def version_table(self) -> str:
        return f"alembic_version_{self.service}"

    def config(self, connection: Connection | None = None) -> Config:
        cfg = Config()
        location = resources.files(f"chorus.{self.service}") / "migrations"
        cfg.set_main_option("script_location", str(location))
        cfg.attributes["schema"] = self
        cfg.attributes["connection"] = connection
        return cfg

    def include(self, obj, name, type_, reflected, compare_to) -> bool:
        """Autogenerate looks at our tables only (SQLModel.metadata is shared across services)."""
        if type_ == "table":
            return name in {t.name for t in self.tables}
        return True


def upgrade(engine: Engine, schema: Schema, revision: str = "head") -> None:
    """Bring ``engine``'s database to ``revision`` of ``schema`` (adopting a pre-migration database)."""
    with engine.begin() as connection:
        _lock(connection, schema)
        cfg = schema.config(connection)
        existing = set(inspect(connection).get_table_names())
        if schema.version_table not in existing and existing & {t.name for t in schema.tables}:
            command.stamp(cfg, schema.first_revision)
        command.upgrade(cfg, revision)


def run_env(context: EnvironmentContext) -> None:
    """The body of every service's migrations/env.py: run online on the connection ``upgrade`` passed."""
    schema: Schema = context.config.attributes["schema"]
    connection: Connection = context.config.attributes["connection"]
    context.configure(
        connection=connection,
        target_metadata=SQLModel.metadata,
        include_object=schema.include,
        version_table=schema.version_table,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying them
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def schema_differences(engine: Engine, schema: Schema) -> list:
    """What the database lacks or has beyond the models (empty when migrations match the code)."""
    from alembic.autogenerate import compare_metadata

    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={
            "include_object": schema.include, "compare_type": True,
            "version_table": schema.version_table,
        })
        return compare_metadata(context, SQLModel.metadata)


def _lock(connection: Connection, schema: Schema) -> None:
    if connection.dialect.name == "postgresql":
        key = zlib.crc32(schema.version_table.encode())
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
