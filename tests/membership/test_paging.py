"""The directory and member lists page and search (keyset pages, on SQLite and PostgreSQL), so that
nobody can push groups out of the directory and a 10,000-member group lists page by page."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
import sqlalchemy as sa

from chorus.membership.errors import GroupNotFound, InvalidInput
from chorus.membership.validation import decode_cursor, encode_cursor, name_key, sort_key

OWNER = "u_owner"
T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


# The two tables as SQL sees them, so that seeding thousands of rows is one statement (creating
# them one by one is what the other tests do) with timestamps stored as the store stores them.
_GROUPS = sa.table("chat_groups", *(sa.column(c) for c in ("id", "name", "name_key", "sort_key", "owner_id")),
                   sa.column("created_at", sa.DateTime(timezone=True)))
_MEMBERS = sa.table("group_members", sa.column("group_id"), sa.column("account_id"),
                    sa.column("joined_at", sa.DateTime(timezone=True)))


def seed_groups(engine, names: list[str], prefix: str = "g") -> list[str]:
    rows = [{"id": f"{prefix}{n:05d}", "name": name, "name_key": name_key(name), "sort_key": sort_key(name),
             "owner_id": OWNER, "created_at": T0} for n, name in enumerate(names)]
    with engine.begin() as connection:
        connection.execute(_GROUPS.insert(), rows)
    return [row["id"] for row in rows]


def seed_members(engine, group_id: str, account_ids: list[str]) -> None:
    """Members that all joined at the same instant: the page order falls back on the account id."""
    with engine.begin() as connection:
        connection.execute(_MEMBERS.insert(), [{"group_id": group_id, "account_id": account, "joined_at": T0}
                                               for account in account_ids])


def walk_directory(store, limit: int, query: str = "") -> list[str]:
    ids, after = [], None
    while True:
        page = store.directory_page(None, limit, query=query, after=after)
        ids += [info.id for info, _ in page.entries]
        if page.next_after is None:
            return ids
        after = page.next_after


def test_the_directory_finds_one_group_among_5000_and_pages_through_all_without_repeats_or_gaps(store, engine):
    ids = seed_groups(engine, [f"Team {n:04d} chat" for n in range(5000)])
    [(found, _)] = store.directory_page(None, 200, query="team 4321").entries
    assert found.name == "Team 4321 chat"
    walked = walk_directory(store, 200)
    assert len(walked) == len(set(walked)) == 5000 and set(walked) == set(ids)
    assert walk_directory(store, 37, query="team 42") == [ids[n] for n in range(4200, 4300)], "in name order"


def test_500_groups_named_to_sort_first_no_longer_hide_the_others(store, engine):
    seed_groups(engine, [f"!xx{n:03d}" for n in range(500)], prefix="x")
    garden, _ = store.create_group(OWNER, "Gardening")
    assert garden.id not in [info.id for info, _ in store.directory(None, 200)], "the first page is theirs"
    assert [info.id for info, _ in store.directory_page(None, 200, query="garden").entries] == [garden.id]
    assert garden.id in walk_directory(store, 200), "and paging reaches it"


def test_a_search_ignores_case_and_look_alikes_and_percent_signs_are_plain_text(store):
    paypal, _ = store.create_group(OWNER, "PayPal support")
    fifty, _ = store.create_group(OWNER, "50% off")
    assert [info.id for info, _ in store.directory_page(None, 10, query="paypaI").entries] == [paypal.id]
    assert [info.id for info, _ in store.directory_page(None, 10, query="%").entries] == [fifty.id]
    assert store.directory_page(None, 10, query="_").entries == []


def test_a_page_continues_after_its_last_group_even_if_groups_come_and_go(store):
    for name in ["b", "d", "f"]:
        store.create_group(OWNER, name)
    first = store.directory_page(None, 2)
    assert [info.name for info, _ in first.entries] == ["b", "d"]
    store.create_group(OWNER, "a")  # before the cursor: not seen on this walk, no repeat either
    store.create_group(OWNER, "e")
    assert [info.name for info, _ in store.directory_page(None, 2, after=first.next_after).entries] == ["e", "f"]


def test_the_member_list_of_a_big_group_pages_without_repeats_or_gaps(store, engine):
    group, _ = store.create_group(OWNER, "Big")
    accounts = [f"u_{n:05d}" for n in range(2500)]
    seed_members(engine, group.id, accounts)
    walked, after, pages = [], None, 0
    while True:
        page = store.member_page(group.id, 1000, after)
        walked += page.account_ids
        pages += 1
        if page.next_after is None:
            break
        after = page.next_after
    assert pages == 3 and walked == [*accounts, OWNER], "joined order (the seeded ones first: T0 is earlier); " \
                                                       "the same instant: by account id"


def test_is_member_answers_for_one_account_and_refuses_an_unknown_group(store):
    group, _ = store.create_group(OWNER, "General")
    assert store.is_member(group.id, OWNER) and not store.is_member(group.id, "u_other")
    with pytest.raises(GroupNotFound):
        store.is_member("g_missing", OWNER)


@pytest.mark.parametrize("query", ["a\x00b", "x" * 129])
def test_a_bad_search_is_refused(store, query):
    with pytest.raises(InvalidInput):
        store.directory_page(None, 10, query=query)


@pytest.mark.parametrize("cursor", ["", "not base64!", encode_cursor("a"), encode_cursor("a", "b", "c"),
                                    encode_cursor("a\x00", "b")])
def test_cursors_this_service_did_not_make_are_refused(cursor):
    with pytest.raises(InvalidInput, match="cursor"):
        decode_cursor(cursor, parts=2)
    assert decode_cursor(encode_cursor("pay pal", "g_1"), parts=2) == ("pay pal", "g_1")
