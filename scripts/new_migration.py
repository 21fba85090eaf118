"""Write a new Alembic revision for one service from the difference between its models and its migrations.

    .venv/bin/python scripts/new_migration.py auth "add accounts.locked_until"

Upgrades a scratch SQLite database to the service's current head, then lets
Alembic's autogenerate write the next revision (numbered 0001, 0002, ...)
into services/<service>/migrations/versions/. Read the file it writes before
committing: autogenerate cannot see renames, and PostgreSQL may want more.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import tempfile
from pathlib import Path

from alembic import command
from alembic.script import ScriptDirectory

from chorus.common.db import create_db_engine
from chorus.common.migrations import upgrade

SERVICES = ("auth", "membership", "broker")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("service", choices=SERVICES)
    parser.add_argument("message", help="what the revision changes, in a few words")
    args = parser.parse_args(argv)
    schema = importlib.import_module(f"chorus.{args.service}.storage").SCHEMA
    with tempfile.TemporaryDirectory() as scratch:
        engine = create_db_engine(f"sqlite:///{Path(scratch) / 'scratch.db'}")
        upgrade(engine, schema)
        with engine.begin() as connection:
            cfg = schema.config(connection)
            heads = ScriptDirectory.from_config(cfg).get_heads()
            number = max([int(h) for h in heads if h.isdigit()], default=0) + 1
            script = command.revision(cfg, message=args.message, autogenerate=True, rev_id=f"{number:04d}")
        engine.dispose()
    print(f"wrote {script.path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
