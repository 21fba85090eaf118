"""Alembic environment for the auth schema; see chorus.common.migrations."""

from alembic import context

from chorus.common.migrations import run_env

run_env(context)
