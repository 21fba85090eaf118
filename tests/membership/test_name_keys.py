"""Group name keys ignore look-alikes: the revision that recomputes them, and what it does to
groups whose names collide only now (pure planning, then on SQLite and PostgreSQL)."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import text

from chorus.common.migrations import upgrade
from chorus.membership.name_keys import StoredGroup, plan_rekey
from chorus.membership.storage import SCHEMA, MembershipStore
from chorus.membership.validation import MAX_GROUP_NAME_CHARS, name_key

CYRILLIC_A = "\u0410"
T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def stored(group_id: str, name: str, minutes: int, key: str | None = None) -> StoredGroup:
    return StoredGroup(group_id, name, key if key is not None else name.casefold(), T0 + timedelta(minutes=minutes))


def test_the_older_group_keeps_its_name_and_the_newer_gets_a_suffix():
    changes = plan_rekey([stored("g_new", f"{CYRILLIC_A}lice", 5), stored("g_old", "Alice", 1)], name_key)
    by_id = {change.id: change for change in changes}
    assert by_id["g_old"].name == "Alice" and by_id["g_old"].renamed_from is None
    assert (by_id["g_new"].name, by_id["g_new"].renamed_from, by_id["g_new"].collided_with) == (
        f"{CYRILLIC_A}lice (2)", f"{CYRILLIC_A}lice", "g_old")
    assert len({change.name_key for change in changes}) == 2


def test_suffixes_count_up_and_long_names_are_cut_to_fit():
    long = "x" * MAX_GROUP_NAME_CHARS
    changes = plan_rekey([stored("g1", "paypal", 1), stored("g2", "paypaI", 2), stored("g3", "PAYPAL", 3),
                          stored("g4", long, 4), stored("g5", long.upper(), 5)], name_key)
    names = {change.id: change.name for change in changes if change.renamed_from}
    assert names == {"g2": "paypaI (2)", "g3": "PAYPAL (3)", "g5": "X" * (MAX_GROUP_NAME_CHARS - 4) + " (2)"}


def test_groups_whose_key_is_already_right_are_left_alone():
    assert plan_rekey([stored("g1", "Books", 1, key=name_key("Books"))], name_key) == []


def test_the_revision_recomputes_keys_renames_newer_look_alikes_and_logs_it(engine, caplog):
    upgrade(engine, SCHEMA, revision="0001")
    with engine.begin() as connection:
        for minutes, (group_id, name) in enumerate([("g_alice", "Alice"), ("g_fake", f"{CYRILLIC_A}lice"),
                                                    ("g_pay", "paypal"), ("g_payi", "paypaI"),
                                                    ("g_books", "Books")]):
            connection.execute(text("INSERT INTO chat_groups (id, name, name_key, owner_id, created_at) "
                                    "VALUES (:id, :name, :key, 'u_owner', :at)"),
                               {"id": group_id, "name": name, "key": name.casefold(),
                                "at": T0 + timedelta(minutes=minutes)})
    with caplog.at_level(logging.WARNING, logger="chorus.membership.migrations"):
        upgrade(engine, SCHEMA)
    store = MembershipStore(engine)
    names = {group_id: store.get_group(group_id).name for group_id in ("g_alice", "g_fake", "g_pay", "g_payi",
                                                                       "g_books")}
    assert names == {"g_alice": "Alice", "g_fake": f"{CYRILLIC_A}lice (2)", "g_pay": "paypal",
                     "g_payi": "paypaI (2)", "g_books": "Books"}
    with engine.connect() as connection:
        keys = dict(connection.execute(text("SELECT id, name_key FROM chat_groups")).all())
    assert keys == {group_id: name_key(name) for group_id, name in names.items()}
    assert [info.name for info, _ in store.directory(None, 10)] == [
        "Alice", "Books", "paypaI (2)", "paypal", f"{CYRILLIC_A}lice (2)"], "sorted by the new sort_key"
    renames = [record.getMessage() for record in caplog.records]
    assert len(renames) == 2 and all("looks like the older group" in message for message in renames)


def test_after_the_revision_a_look_alike_of_an_existing_group_is_refused(make_store):
    store = make_store()
    store.create_group("u_owner", "Alice")
    from chorus.membership.errors import GroupNameTaken
    with pytest.raises(GroupNameTaken, match="'Alice'"):
        store.create_group("u_owner", "ALICE")
