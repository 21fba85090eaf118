"""MembershipStore on a real database: each test runs on SQLite and on PostgreSQL (see conftest)."""

from __future__ import annotations


import pytest
from sqlalchemy import event, inspect

from chorus.common.db import create_db_engine
from chorus.membership.errors import (
    GroupFull,
    GroupNameTaken,
    GroupNotFound,
    InvalidInput,
    StorageUnavailable,
    TooManyGroups,
)
from chorus.membership.storage import GroupInfo, MembershipStore, migrate
from together import run_together

OWNER = "u_owner"


def names(infos: list[GroupInfo]) -> list[str]:
    return [info.name for info in infos]


def test_created_group_has_its_owner_as_only_member(store):
    group, _ = store.create_group(OWNER, "  General  ")
    assert group == GroupInfo(id=group.id, name="General", owner_id=OWNER, member_count=1)
    assert group.id.startswith("g_")
    assert store.members_of(group.id) == [OWNER]
    assert store.get_group(group.id) == group
    assert store.groups_of(OWNER) == [group]


@pytest.mark.parametrize("second", ["general", "GENERAL", "  General ", "gEnErAl"])
def test_group_names_are_unique_ignoring_case(store, second):
    first, _ = store.create_group(OWNER, "General")
    with pytest.raises(GroupNameTaken, match="already exists"):
        store.create_group("u_other", second)
    assert store.directory(None, 10) == [(first, False)]
    assert store.groups_of("u_other") == []  # the failed create left no membership behind


def test_join_is_idempotent(store):
    group, _ = store.create_group(OWNER, "General")
    joined, changed = store.join(group.id, "u_ann")
    assert changed is not None and joined.member_count == 2
    again, changed = store.join(group.id, "u_ann")
    assert changed is None and again.member_count == 2
    assert store.members_of(group.id) == [OWNER, "u_ann"]


def test_leave_is_idempotent(store):
    group, _ = store.create_group(OWNER, "General")
    store.join(group.id, "u_ann")
    left, changed = store.leave(group.id, "u_ann")
    assert changed is not None and left.member_count == 1
    again, changed = store.leave(group.id, "u_ann")
    assert changed is None and again.member_count == 1
    _, changed = store.leave(group.id, "u_never_joined")
    assert changed is None
    assert store.members_of(group.id) == [OWNER]


def test_a_group_outlives_its_owner_leaving(store):
    group, _ = store.create_group(OWNER, "General")
    emptied, changed = store.leave(group.id, OWNER)
    assert changed and emptied.member_count == 0
    assert store.members_of(group.id) == []
    assert store.directory(None, 10) == [(emptied, False)]
    assert store.groups_of(OWNER) == []


def test_groups_of_lists_only_the_accounts_groups_by_name_ignoring_case(store):
    for name in ["gamma", "Alpha", "beta", "Delta"]:
        store.create_group(OWNER, name)
    other, _ = store.create_group("u_other", "aardvark")
    mine = store.groups_of(OWNER)
    assert names(mine) == ["Alpha", "beta", "Delta", "gamma"]
    assert all(info.member_count == 1 for info in mine)
    store.join(other.id, OWNER)
    assert names(store.groups_of(OWNER)) == ["aardvark", "Alpha", "beta", "Delta", "gamma"]
    assert store.groups_of(OWNER)[0].member_count == 2


def test_groups_of_an_unknown_account_is_empty(store):
    store.create_group(OWNER, "General")
    assert store.groups_of("u_nobody") == []


def test_directory_marks_the_groups_the_viewer_joined(store):
    general, _ = store.create_group(OWNER, "general")
    random_, _ = store.create_group(OWNER, "random")
    books, _ = store.create_group("u_other", "books")
    store.join(random_.id, "u_ann")
    entries = store.directory("u_ann", 10)
    assert [(info.name, info.member_count, joined) for info, joined in entries] == [
        ("books", 1, False),
        ("general", 1, False),
        ("random", 2, True),
    ]
    assert [joined for _, joined in store.directory(OWNER, 10)] == [False, True, True]
    assert [joined for _, joined in store.directory(None, 10)] == [False, False, False]
    assert {info.id for info, _ in entries} == {general.id, random_.id, books.id}


def test_directory_stops_at_the_limit_keeping_name_order(store):
    for name in ["c", "a", "d", "b"]:
        store.create_group(OWNER, name)
    assert [info.name for info, _ in store.directory(None, 2)] == ["a", "b"]
    with pytest.raises(InvalidInput):
        store.directory(None, 0)


def test_member_counts_take_the_same_number_of_queries_for_many_groups(store, engine):
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    store.create_group(OWNER, "only")
    statements.clear()
    store.directory(OWNER, 100)
    with_one_group = len(statements)
    for i in range(9):
        store.create_group(OWNER, f"more {i}")
    statements.clear()
    store.directory(OWNER, 100)
    assert len(statements) == with_one_group
    statements.clear()
    assert len(store.groups_of(OWNER)) == 10
    assert len(statements) == with_one_group


@pytest.mark.parametrize(
    "operation",
    [
        lambda store: store.join("g_missing", "u_ann"),
        lambda store: store.leave("g_missing", "u_ann"),
        lambda store: store.members_of("g_missing"),
        lambda store: store.get_group("g_missing"),
    ],
    ids=["join", "leave", "members_of", "get_group"],
)
def test_unknown_group_is_not_found(store, operation):
    with pytest.raises(GroupNotFound, match="g_missing"):
        operation(store)


@pytest.mark.parametrize(
    "operation",
    [
        lambda store: store.create_group(OWNER, "   "),
        lambda store: store.create_group(OWNER, "x" * 65),
        lambda store: store.create_group("", "General"),
        lambda store: store.join("", "u_ann"),
        lambda store: store.join("g_x", ""),
        lambda store: store.leave("g_x", "a\x00b"),
        lambda store: store.groups_of(""),
        lambda store: store.directory("", 10),
    ],
)
def test_invalid_input_is_rejected(store, operation):
    with pytest.raises(InvalidInput):
        operation(store)


def test_a_full_group_refuses_new_members_but_not_existing_ones(make_store):
    store = make_store(max_members_per_group=2)
    group, _ = store.create_group(OWNER, "small")
    store.join(group.id, "u_ann")
    with pytest.raises(GroupFull, match="group has reached 2 members"):
        store.join(group.id, "u_bob")
    assert store.join(group.id, "u_ann") == (store.get_group(group.id), None)
    store.leave(group.id, "u_ann")
    assert store.join(group.id, "u_bob")[1] is not None
    assert store.members_of(group.id) == [OWNER, "u_bob"]


def test_an_account_cannot_create_or_join_past_its_group_limit(make_store):
    store = make_store(max_groups_per_account=2)
    first, _ = store.create_group(OWNER, "one")
    store.create_group(OWNER, "two")
    with pytest.raises(TooManyGroups, match="at most 2 groups"):
        store.create_group(OWNER, "three")
    elsewhere, _ = store.create_group("u_other", "elsewhere")
    with pytest.raises(TooManyGroups):
        store.join(elsewhere.id, OWNER)
    assert names(store.groups_of(OWNER)) == ["one", "two"]
    store.leave(first.id, OWNER)
    assert store.join(elsewhere.id, OWNER)[1] is not None


def test_limits_below_one_are_refused(engine):
    with pytest.raises(ValueError):
        MembershipStore(engine, max_members_per_group=0)


def test_simultaneous_joins_of_one_account_add_it_once(store):
    group, _ = store.create_group(OWNER, "busy")
    outcomes = run_together(8, lambda _: store.join(group.id, "u_ann"))
    assert [changed is not None for _, changed in outcomes].count(True) == 1, outcomes
    assert store.members_of(group.id) == [OWNER, "u_ann"]
    assert store.get_group(group.id).member_count == 2


def test_simultaneous_joins_of_many_accounts_are_all_counted(store):
    group, _ = store.create_group(OWNER, "busy")
    outcomes = run_together(16, lambda i: store.join(group.id, f"u_{i}"))
    assert all(changed for _, changed in outcomes), outcomes
    assert store.get_group(group.id).member_count == 17
    assert sorted(store.members_of(group.id)) == sorted([OWNER, *(f"u_{i}" for i in range(16))])


def test_simultaneous_creates_of_one_name_have_one_winner(store):
    outcomes = run_together(8, lambda i: store.create_group(f"u_{i}", "Race"))
    winners = [outcome[0] for outcome in outcomes if isinstance(outcome, tuple)]
    assert len(winners) == 1, outcomes
    assert all(isinstance(outcome, GroupNameTaken) for outcome in outcomes if not isinstance(outcome, tuple))
    assert store.directory(None, 10) == [(winners[0], False)]


@pytest.mark.postgres
def test_postgres_tables_live_in_the_test_schema(postgres_engine, postgres_schema):
    migrate(postgres_engine)
    assert set(inspect(postgres_engine).get_table_names(schema=postgres_schema)) == {
        "chat_groups",
        "group_members",
        "membership_changes",
        "alembic_version_membership",
    }


def test_unreachable_database_is_reported_as_unavailable():
    engine = create_db_engine("postgresql://nobody@127.0.0.1:1/nothing")
    try:
        with pytest.raises(StorageUnavailable, match="try again"):
            MembershipStore(engine).groups_of("u_ann")
    finally:
        engine.dispose()


def test_every_pairs_newest_change_pages_out_in_key_order_for_the_brokers_snapshot(store):
    first, _ = store.create_group(OWNER, "First")
    second, _ = store.create_group("u_zed", "Second")
    for account in ("u_b", "u_a", "u_c"):
        store.join(first.id, account)
    _, left = store.leave(first.id, "u_c")
    everything, after = [], None
    while page := store.last_changes_page(after, 2):
        assert len(page) <= 2
        everything += page
        after = (page[-1].group_id, page[-1].account_id)
    assert [(c.group_id, c.account_id, c.joined) for c in everything] == sorted(
        {(first.id, a, True) for a in (OWNER, "u_a", "u_b")} | {(first.id, "u_c", False), (second.id, "u_zed", True)})
    assert [c.change_id for c in everything if c.account_id == "u_c"] == [left], "the leave, not the join"


def test_every_change_gets_a_higher_number_than_the_ones_committed_before(store):
    group, created = store.create_group(OWNER, "General")
    numbers = [created]
    for _ in range(3):
        numbers.append(store.join(group.id, "u_ann")[1])
        numbers.append(store.leave(group.id, "u_ann")[1])
    assert numbers == sorted(set(numbers)), numbers
    assert store.join(group.id, OWNER)[1] is None, "no change, no number"


def test_racing_joins_and_leaves_of_one_pair_are_numbered_in_commit_order(store):
    """What several membership replicas do to one person: whatever interleaving the database
    chose, the highest number is the state it ended in."""
    group, _ = store.create_group(OWNER, "busy")
    outcomes = run_together(16, lambda i: (store.join if i % 2 else store.leave)(group.id, "u_ann"))
    numbered = [changed for _, changed in outcomes if changed is not None]
    assert len(numbered) == len(set(numbered))
    [newest] = [c for c in store.last_changes_page(None, 100) if c.account_id == "u_ann"] or [None]
    is_member = "u_ann" in store.members_of(group.id)
    if newest is None:
        assert not numbered and not is_member
    else:
        assert newest.change_id == max(numbered) and newest.joined == is_member


def test_memberships_made_before_changes_were_numbered_become_numbered_joins(engine):
    from datetime import datetime, timezone

    from sqlalchemy import text

    from chorus.common.migrations import upgrade
    from chorus.membership.storage import SCHEMA

    upgrade(engine, SCHEMA, revision="0002")
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO chat_groups (id, name, name_key, sort_key, owner_id, created_at) "
                                "VALUES ('g_old', 'Old', 'old', 'old', :owner, :now)"), {"owner": OWNER, "now": now})
        for account in (OWNER, "u_ann"):
            connection.execute(text("INSERT INTO group_members (group_id, account_id, joined_at) "
                                    "VALUES ('g_old', :account, :now)"), {"account": account, "now": now})
    migrate(engine)
    store = MembershipStore(engine)
    before = store.last_changes_page(None, 10)
    assert [(c.group_id, c.account_id, c.joined) for c in before] == [("g_old", "u_ann", True), ("g_old", OWNER, True)]
    _, left = store.leave("g_old", "u_ann")
    assert left > max(c.change_id for c in before), "new numbers continue above the backfilled ones"
