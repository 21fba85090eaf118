"""group names unique under look-alike characters, sorted by a sort key

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02

The unique key of a group name used to ignore case and composition only; now it
is Unicode's confusables skeleton too (chorus.common.names.confusable_key), so
"Alice" and "Аlice" (Cyrillic А) cannot both exist: every stored key is
recomputed. Groups whose names now collide: the older keeps its name, each
newer one gets a " (2)"-style suffix, and each rename is logged
(membership.name_keys). Lists are ordered by the new column sort_key (the name
case folded, what name_key used to be), since the look-alike key is no order
for people ("1" reads as "l"). Downgrading restores the old keys and drops
sort_key; renames stay.
"""
import logging
import unicodedata
from typing import Sequence, Union

import sqlalchemy as sa
import sqlmodel  # noqa: F401  (the column type below)
from alembic import op

from chorus.membership.name_keys import StoredGroup, plan_rekey
from chorus.membership.validation import name_key, sort_key

revision: str = '0002'
down_revision: Union[str, Sequence[str], None] = '0001'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

_log = logging.getLogger("chorus.membership.migrations")
_groups = sa.table("chat_groups", sa.column("id", sa.String), sa.column("name", sa.String),
                   sa.column("name_key", sa.String), sa.column("sort_key", sa.String),
                   sa.column("created_at", sa.DateTime(timezone=True)))


def _old_key(name: str) -> str:
    """The key before this revision (casefolded, NFC), frozen here."""
    return unicodedata.normalize("NFC", name.casefold())


def _rekey(key_of) -> None:
    connection = op.get_bind()
    rows = connection.execute(sa.select(_groups.c.id, _groups.c.name, _groups.c.name_key,
                                        _groups.c.created_at)).all()
    changes = plan_rekey([StoredGroup(*row) for row in rows], key_of)
    # Two steps, so that no row ever takes a key another row still holds: first a placeholder no
    # real key can equal (keys are case folded; the placeholder has capitals), then the new key.
    for change in changes:
        connection.execute(_groups.update().where(_groups.c.id == change.id)
                           .values(name_key=f"REKEY {change.id}"))
    for change in changes:
        connection.execute(_groups.update().where(_groups.c.id == change.id)
                           .values(name=change.name, name_key=change.name_key))
        if change.renamed_from is not None:
            _log.warning("group %s renamed from %r to %r: its name looks like the older group %s's",
                         change.id, change.renamed_from, change.name, change.collided_with)


def upgrade() -> None:
    with op.batch_alter_table("chat_groups", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sort_key", sqlmodel.sql.sqltypes.AutoString(), nullable=True))
    _rekey(name_key)
    connection = op.get_bind()
    for group_id, name in connection.execute(sa.select(_groups.c.id, _groups.c.name)).all():
        connection.execute(_groups.update().where(_groups.c.id == group_id).values(sort_key=sort_key(name)))
    with op.batch_alter_table("chat_groups", schema=None) as batch_op:
        batch_op.alter_column("sort_key", existing_type=sqlmodel.sql.sqltypes.AutoString(), nullable=False)
        batch_op.create_index(batch_op.f("ix_chat_groups_sort_key"), ["sort_key"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("chat_groups", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_chat_groups_sort_key"))
        batch_op.drop_column("sort_key")
    _rekey(_old_key)
