"""Alembic environment for the membership schema; see chorus.common.migrations."""

from alembic import context

from chorus.common.migrations import run_env

run_env(context)
