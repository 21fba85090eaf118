"""Recomputing the group name keys when the key function changes (a migration, or a new ICU).

Names that were distinct under the old keys may collide under the new ones
("Alice" and "Аlice" with a Cyrillic А did before look-alikes counted). The
rule then: the older group (created first; ties by id) keeps its name, and
each newer one is renamed with the first free suffix " (2)", " (3)"... (the
name cut to fit MAX_GROUP_NAME_CHARS), which the caller logs. Pure: rows in,
the changes out; the migration applies them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from chorus.membership.validation import MAX_GROUP_NAME_CHARS

__all__ = ["StoredGroup", "Rekeyed", "plan_rekey"]


@dataclass(frozen=True, slots=True)
class StoredGroup:
    id: str
    name: str
    name_key: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Rekeyed:
    id: str
    name: str                 # the name to store (the old one unless renamed)
    name_key: str
    renamed_from: str | None  # the old name when the group had to be renamed
    collided_with: str | None  # the id of the older group whose key it shares


def plan_rekey(groups: Iterable[StoredGroup], key_of: Callable[[str], str]) -> list[Rekeyed]:
    """The groups whose name or key must change so that every key is ``key_of(name)`` and unique."""
    owners: dict[str, str] = {}  # key -> id of the group holding it
    changes = []
    for group in sorted(groups, key=lambda g: (g.created_at, g.id)):
        key = key_of(group.name)
        if key not in owners:
            owners[key] = group.id
            if key != group.name_key:
                changes.append(Rekeyed(group.id, group.name, key, None, None))
            continue
        name, new_key = _free_name(group.name, owners, key_of)
        owners[new_key] = group.id
        changes.append(Rekeyed(group.id, name, new_key, group.name, owners[key]))
    return changes


def _free_name(name: str, owners: dict[str, str], key_of: Callable[[str], str]) -> tuple[str, str]:
    number = 2
    while True:
        suffix = f" ({number})"
        candidate = name[: MAX_GROUP_NAME_CHARS - len(suffix)].rstrip() + suffix
        if (key := key_of(candidate)) not in owners:
            return candidate, key
        number += 1
