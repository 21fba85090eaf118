"""The directory and member lists page through the HTTP API, on a stack of its own whose databases
the tests fill directly (thousands of groups, a 10,000-member group: registering that many people
over HTTP would take an hour of argon2)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from urllib.parse import urlencode

import aiohttp
import pytest
import sqlalchemy as sa

from chat import Api, Person, unique
from chorus.common.db import create_db_engine, sqlite_url
from chorus.membership.validation import name_key, sort_key

GROUPS, MEMBERS = 5000, 10_000
DIRECTORY_PAGE, MEMBER_PAGE = 200, 1000  # the server's page sizes (membership's defaults)

_ACCOUNTS = sa.table("accounts", *(sa.column(c) for c in ("id", "username", "username_key", "display_name",
                                                          "password_hash")),
                     sa.column("created_at", sa.DateTime(timezone=True)))
_GROUPS = sa.table("chat_groups", *(sa.column(c) for c in ("id", "name", "name_key", "sort_key", "owner_id")),
                   sa.column("created_at", sa.DateTime(timezone=True)))
_MEMBERS = sa.table("group_members", sa.column("group_id"), sa.column("account_id"),
                    sa.column("joined_at", sa.DateTime(timezone=True)))


@pytest.fixture(scope="module")
def paged(start_stack):
    with start_stack({"CHORUS_REGISTRATIONS_PER_IP": "1000000"}) as stack:  # every test registers here
        yield stack


@pytest.fixture
async def api(paged):
    async with aiohttp.ClientSession() as http:
        yield Api(http, paged.base_url)


def insert(stack, database: str, table, rows: list[dict]) -> None:
    engine = create_db_engine(sqlite_url(stack.data_dir, database))
    try:
        with engine.begin() as connection:
            connection.execute(table.insert(), rows)
    finally:
        engine.dispose()


def seed_groups(stack, names: list[str], owner_id: str) -> list[str]:
    now = datetime.now(timezone.utc)
    rows = [{"id": f"g_seed{unique('')}", "name": name, "name_key": name_key(name), "sort_key": sort_key(name),
             "owner_id": owner_id, "created_at": now} for name in names]
    insert(stack, "membership", _GROUPS, rows)
    return [row["id"] for row in rows]


async def walk(api: Api, path: str, token: str, key: str, **params) -> tuple[list[dict], int]:
    """Every entry of a paged list and the number of pages, following next_cursor."""
    entries, pages, cursor = [], 0, None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        body = await api.ok("GET", f"{path}?{urlencode(query)}" if query else path, token=token)
        entries += body[key]
        pages += 1
        if body["next_cursor"] is None:
            return entries, pages
        cursor = body["next_cursor"]


async def test_the_directory_finds_a_group_among_5000_and_pages_through_all_of_them(api, paged):
    alice = await Person.register(api, paged.ws_url, "alice")
    tag = unique("Paged ")
    ids = seed_groups(paged, [f"{tag} {n:04d}" for n in range(GROUPS)], alice.user["id"])
    body = await api.ok("GET", "/api/groups?" + urlencode({"q": f"{tag.upper()} 4321"}), token=alice.token)
    assert [g["id"] for g in body["groups"]] == [ids[4321]] and body["next_cursor"] is None

    found, pages = await walk(api, "/api/groups", alice.token, "groups", q=tag)
    assert [g["id"] for g in found] == ids, "every group once, in name order"
    assert pages == -(-GROUPS // DIRECTORY_PAGE)
    everything, _ = await walk(api, "/api/groups", alice.token, "groups")
    everything_ids = [g["id"] for g in everything]
    assert len(everything_ids) == len(set(everything_ids)) and set(ids) <= set(everything_ids)


async def test_500_groups_named_to_sort_first_no_longer_hide_the_others(api, paged):
    alice = await Person.register(api, paged.ws_url, "alice")
    garden = await alice.create_group(unique("Gardening "))
    seed_groups(paged, [f"!xx{unique('')}" for _ in range(500)], alice.user["id"])
    first_page = await api.ok("GET", "/api/groups", token=alice.token)
    assert garden["id"] not in [g["id"] for g in first_page["groups"]] and first_page["next_cursor"]
    found = await api.ok("GET", "/api/groups?" + urlencode({"q": "gardening"}), token=alice.token)
    assert garden["id"] in [g["id"] for g in found["groups"]]


async def test_a_10000_member_group_lists_its_members_page_by_page(api, paged):
    alice = await Person.register(api, paged.ws_url, "alice")
    group = await alice.create_group(unique("Big "))
    later = datetime.now(timezone.utc) + timedelta(seconds=1)
    people = [{"id": f"u_seed{unique('')}", "username": unique("seed"), "display_name": f"Seed {n}",
               "password_hash": "not a hash", "created_at": later} for n in range(MEMBERS - 1)]
    insert(paged, "auth", _ACCOUNTS, [{**p, "username_key": p["username"].lower()} for p in people])
    insert(paged, "membership", _MEMBERS, [{"group_id": group["id"], "account_id": p["id"], "joined_at": later}
                                          for p in people])

    members, pages = await walk(api, f"/api/groups/{group['id']}/members", alice.token, "members")
    assert pages == MEMBERS // MEMBER_PAGE
    assert [m["id"] for m in members] == [alice.user["id"], *sorted(p["id"] for p in people)], \
        "each member once: the owner (joined first), then the rest by id (they joined at one instant)"
    assert members[1]["username"] and members[1]["display_name"].startswith("Seed")


async def test_a_cursor_that_is_not_ours_is_a_400(api, paged):
    alice = await Person.register(api, paged.ws_url, "alice")
    group = await alice.create_group()
    for path in ("/api/groups?cursor=garbage", f"/api/groups/{group['id']}/members?cursor=garbage"):
        status, body = await api.call("GET", path, token=alice.token)
        assert (status, body["error"]["code"]) == (400, "invalid_argument"), path
