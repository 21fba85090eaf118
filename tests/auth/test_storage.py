"""AuthStore on a real database: each test runs on SQLite and on PostgreSQL (see conftest)."""

from __future__ import annotations

import importlib
import time

import pytest
from sqlalchemy import event, inspect
from sqlmodel import SQLModel

from chorus.auth.errors import StorageUnavailable, UsernameTaken
from chorus.auth.storage import AccountRecord, AuthStore, migrate
from chorus.common.db import create_db_engine
from together import run_together

HASH = "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2g"
NOW = 1_700_000_000


def test_a_created_account_can_be_found_by_username_and_by_id(store):
    ann = store.create_account("Ann", "Ann Smith", HASH)
    assert ann == AccountRecord(id=ann.id, username="Ann", display_name="Ann Smith", password_hash=HASH)
    assert ann.id.startswith("u_")
    assert store.find_by_username("Ann") == ann
    assert store.get_account(ann.id) == ann


def test_an_account_record_keeps_its_hash_out_of_its_repr():
    record = AccountRecord(id="u_1", username="ann", display_name="Ann", password_hash=HASH)
    assert HASH not in repr(record) and "ann" in repr(record)


@pytest.mark.parametrize("typed", ["ann", "ANN", "aNn"])
def test_usernames_are_found_ignoring_case_and_keep_their_spelling(store, typed):
    ann = store.create_account("Ann", "Ann", HASH)
    assert store.find_by_username(typed) == ann
    assert store.find_by_username(typed).username == "Ann"


def test_unknown_usernames_and_ids_are_none(store):
    store.create_account("ann", "Ann", HASH)
    assert store.find_by_username("anne") is None
    assert store.find_by_username("") is None
    assert store.get_account("u_missing") is None


def test_each_account_gets_its_own_id(store):
    ids = {store.create_account(f"user{i}", "x", HASH).id for i in range(5)}
    assert len(ids) == 5


def test_unicode_display_names_round_trip(store):
    long_name = "日" * 64
    ann = store.create_account("ann", "Ann 👩\u200d💻", HASH)
    bob = store.create_account("bob", long_name, HASH)
    assert store.get_account(ann.id).display_name == "Ann 👩\u200d💻"
    assert store.get_account(bob.id).display_name == long_name


@pytest.mark.parametrize("second", ["ann", "ANN", "Ann", "aNN"])
def test_a_username_taken_in_any_case_is_refused(store, second):
    first = store.create_account("Ann", "First", HASH)
    with pytest.raises(UsernameTaken) as caught:
        store.create_account(second, "Second", "$argon2id$other")
    assert str(caught.value) == f"the username {second!r} is taken"
    assert store.find_by_username(second) == first  # the first account is untouched


def test_the_store_still_works_after_a_refused_registration(store):
    store.create_account("ann", "Ann", HASH)
    with pytest.raises(UsernameTaken):
        store.create_account("ANN", "Ann", HASH)
    bob = store.create_account("bob", "Bob", HASH)
    assert store.find_by_username("bob") == bob


def test_simultaneous_registrations_of_one_name_have_one_winner(store):
    spellings = ["race", "RACE", "Race", "rAce", "raCe", "racE", "RAce", "raCE"]
    outcomes = run_together(len(spellings), lambda i: store.create_account(spellings[i], "x", HASH))
    winners = [outcome for outcome in outcomes if isinstance(outcome, AccountRecord)]
    assert len(winners) == 1, outcomes
    assert all(isinstance(outcome, UsernameTaken) for outcome in outcomes if outcome not in winners), outcomes
    assert store.find_by_username("race") == winners[0]


def test_get_accounts_finds_many_in_one_query_in_the_order_asked(store, engine):
    ann = store.create_account("ann", "Ann", HASH)
    bob = store.create_account("bob", "Bob", HASH)
    statements = []

    def record(conn, cursor, statement, *rest):
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        found = store.get_accounts([bob.id, "u_missing", ann.id] + [f"u_x{i}" for i in range(997)])
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert found == [bob, ann]
    assert len(statements) == 1


def test_get_accounts_of_nothing_asks_nothing(store):
    assert store.get_accounts([]) == []


def test_update_password_hash_replaces_only_that_accounts_hash(store):
    ann = store.create_account("ann", "Ann", HASH)
    bob = store.create_account("bob", "Bob", HASH)
    store.update_password_hash(ann.id, "$argon2id$new")
    assert store.find_by_username("ann").password_hash == "$argon2id$new"
    assert store.get_account(bob.id).password_hash == HASH


def test_update_password_hash_of_an_unknown_account_changes_nothing(store):
    ann = store.create_account("ann", "Ann", HASH)
    store.update_password_hash("u_missing", "$argon2id$new")
    assert store.get_account("u_missing") is None
    assert store.get_account(ann.id) == ann


def test_a_revoked_token_is_revoked_and_others_are_not(store):
    assert store.is_revoked("jti-1") is False
    store.revoke("jti-1", NOW + 60)
    assert store.is_revoked("jti-1") is True
    assert store.is_revoked("jti-2") is False


def test_revoking_twice_is_not_an_error(store):
    store.revoke("jti-1", NOW + 60)
    store.revoke("jti-1", NOW + 60)
    assert store.is_revoked("jti-1") is True
    assert store.purge_expired_revocations(now=NOW + 61) == 1  # one record, not two


def test_simultaneous_revocations_of_one_token_all_succeed(store):
    outcomes = run_together(8, lambda _: store.revoke("jti-1", NOW + 60))
    assert outcomes == [None] * 8
    assert store.is_revoked("jti-1") is True


def test_purge_forgets_only_revocations_whose_tokens_have_expired(store):
    store.revoke("expired-long-ago", NOW - 3600)
    store.revoke("expired-just-now", NOW - 1)
    store.revoke("still-valid", NOW + 1)
    store.revoke("valid-for-days", NOW + 7 * 24 * 3600)
    assert store.purge_expired_revocations(now=NOW) == 2
    assert [store.is_revoked(jti) for jti in ["expired-long-ago", "expired-just-now", "still-valid",
                                              "valid-for-days"]] == [False, False, True, True]
    assert store.purge_expired_revocations(now=NOW) == 0


def test_purge_defaults_to_the_wall_clock(store):
    store.revoke("expired", int(time.time()) - 10)
    store.revoke("valid", int(time.time()) + 3600)
    assert store.purge_expired_revocations() == 1
    assert (store.is_revoked("expired"), store.is_revoked("valid")) == (False, True)


def test_migrate_makes_only_the_auth_tables(engine):
    # Importing membership's storage puts its tables into the shared SQLModel metadata too.
    importlib.import_module("chorus.membership.storage")
    assert {"chat_groups", "group_members"} <= set(SQLModel.metadata.tables)
    migrate(engine)
    assert set(inspect(engine).get_table_names()) == {"accounts", "revoked_tokens", "external_accounts", "login_limits", "alembic_version_auth"}


def test_migrate_again_keeps_the_accounts(engine):
    migrate(engine)
    ann = AuthStore(engine).create_account("ann", "Ann", HASH)
    AuthStore(engine).revoke("jti-1", NOW + 60)
    migrate(engine)
    restarted = AuthStore(engine)
    assert restarted.find_by_username("ANN") == ann
    assert restarted.is_revoked("jti-1") is True


@pytest.mark.postgres
def test_postgres_tables_live_in_the_test_schema(postgres_engine, postgres_schema):
    migrate(postgres_engine)
    assert set(inspect(postgres_engine).get_table_names(schema=postgres_schema)) == {
        "accounts", "revoked_tokens", "external_accounts", "login_limits", "alembic_version_auth"}


def test_unreachable_database_is_reported_as_unavailable():
    engine = create_db_engine("postgresql://nobody@127.0.0.1:1/nothing")
    try:
        with pytest.raises(StorageUnavailable, match="the auth database is unavailable; try again"):
            AuthStore(engine).find_by_username("ann")
    finally:
        engine.dispose()
