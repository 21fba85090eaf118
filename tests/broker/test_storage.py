"""The message store on a real database: SQLite in tmp_path and PostgreSQL in a fresh schema."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect, text

from chorus.broker.errors import StoreUnavailable
from chorus.broker.records import SentKey, StoredMessage
from chorus.broker.storage import MessageStore, migrate, use_full_sync
from chorus.common.db import create_db_engine, sqlite_url

TS = 1_700_000_000_000


def message(group: str, seq: int, text: str = "") -> StoredMessage:
    return StoredMessage(group, seq, TS + seq, "u_alice", "alice", "Alice Doe", text or f"{group}#{seq}")


@pytest.fixture
def store(engine) -> MessageStore:
    migrate(engine)
    return MessageStore(engine)


def test_migrate_makes_only_the_brokers_tables(engine):
    migrate(engine)
    migrate(engine)  # idempotent
    assert set(inspect(engine).get_table_names()) == {
        "broker_messages", "broker_read_markers", "broker_sent_keys", "broker_nodes", "broker_group_owners",
        "alembic_version_broker"}


def test_append_batch_stores_every_message_and_last_seqs_reads_them_back(store):
    store.append_batch([message("g1", 1), message("g1", 2), message("g2", 1)])
    store.append_batch([message("g1", 3, "x" * 4000)])
    assert store.last_seqs(["g1", "g2", "nobody", "g1"]) == {"g1": 3, "g2": 1, "nobody": 0}
    [newest], _ = store.page("g1", limit=1)
    assert newest == message("g1", 3, "x" * 4000), "every field comes back as stored"
    assert store.last_seqs([]) == {}
    store.append_batch([])


def test_a_batch_is_all_or_nothing(store):
    store.append_batch([message("g1", 1)])
    with pytest.raises(StoreUnavailable):
        store.append_batch([message("g1", 2), message("g2", 1), message("g1", 1)])  # seq 1 is taken
    assert store.last_seqs(["g1", "g2"]) == {"g1": 1, "g2": 0}, "nothing of the failed batch stayed"


def test_pages_backwards_and_forwards_say_whether_there_is_more(store):
    store.append_batch([message("g1", seq) for seq in range(1, 8)] + [message("g2", 1)])

    def seqs(**kwargs):
        page, more = store.page("g1", **kwargs)
        return [m.seq for m in page], more

    assert seqs(limit=3) == ([7, 6, 5], True), "latest page, newest first"
    assert seqs(before_seq=5, limit=3) == ([4, 3, 2], True)
    assert seqs(before_seq=3, limit=3) == ([2, 1], False)
    assert seqs(before_seq=1, limit=3) == ([], False)
    assert seqs(after_seq=0, limit=3) == ([1, 2, 3], True), "after 0: from the first message"
    assert seqs(after_seq=2, limit=3) == ([3, 4, 5], True), "forwards, oldest first"
    assert seqs(after_seq=4, limit=3) == ([5, 6, 7], False)
    assert seqs(after_seq=7, limit=3) == ([], False)
    assert seqs(limit=7) == ([7, 6, 5, 4, 3, 2, 1], False)
    assert store.page("nope", limit=5) == ([], False)
    with pytest.raises(ValueError):
        store.page("g1", before_seq=3, after_seq=1, limit=5)


def test_mark_read_never_moves_backwards(store):
    assert store.read_seqs("alice", ["g1", "g2"]) == {"g1": 0, "g2": 0}
    store.mark_read("alice", "g1", 5)
    store.mark_read("alice", "g1", 3)
    assert store.read_seqs("alice", ["g1", "g2"]) == {"g1": 5, "g2": 0}
    store.mark_read("alice", "g1", 9)
    store.mark_read("bob", "g1", 1)
    assert store.read_seqs("alice", ["g1"]) == {"g1": 9}
    assert store.read_seqs("bob", ["g1"]) == {"g1": 1}, "markers are per account"


def test_sequence_and_timestamps_fit_64_bits(store):
    big = StoredMessage("g1", 2**40, 2**62, "u", "u", "U", "far future")
    store.append_batch([big])
    assert store.last_seqs(["g1"]) == {"g1": 2**40}
    assert store.page("g1", limit=1)[0] == [big]


def test_a_dead_database_is_store_unavailable_without_sql_in_the_message(tmp_path):
    engine = create_db_engine(f"sqlite:///{tmp_path}/missing-dir/x.db")  # the directory does not exist
    store = MessageStore(engine)
    for call in (lambda: store.last_seqs(["g1"]), lambda: store.append_batch([message("g1", 1)]),
                 lambda: store.page("g1", limit=1), lambda: store.mark_read("a", "g1", 1),
                 lambda: store.read_seqs("a", ["g1"])):
        with pytest.raises(StoreUnavailable) as caught:
            call()
        assert str(caught.value) == "the message store is unavailable; try again"
    engine.dispose()


@pytest.mark.parametrize("full, expected", [(False, 1), (True, 2)])  # NORMAL = 1, FULL = 2
def test_durable_sync_switches_sqlite_to_synchronous_full(tmp_path, full, expected):
    engine = create_db_engine(sqlite_url(tmp_path, "sync"))
    if full:
        use_full_sync(engine)
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA synchronous")).scalar() == expected
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
    engine.dispose()


def test_keys_are_stored_with_their_messages_found_in_one_query_and_forgotten_by_age(store):
    store.append_batch([message("g1", 1), message("g1", 2)],
                       [SentKey("u_alice", "k1", "g1", 1, TS + 1), SentKey("u_alice", "k2", "g1", 2, TS + 2)])
    found = store.find_keys([("u_alice", "k1"), ("u_alice", "k2"), ("u_bob", "k1"), ("u_alice", "k3")])
    assert found == {("u_alice", "k1"): SentKey("u_alice", "k1", "g1", 1, TS + 1),
                     ("u_alice", "k2"): SentKey("u_alice", "k2", "g1", 2, TS + 2)}
    assert store.forget_keys_before(TS + 2) == 1
    assert list(store.find_keys([("u_alice", "k1"), ("u_alice", "k2")])) == [("u_alice", "k2")]
    assert store.page("g1", after_seq=0, limit=10)[0][0].seq == 1, "forgetting a key keeps its message"


def test_a_key_already_stored_fails_the_whole_batch_and_stores_none_of_it(store):
    store.append_batch([message("g1", 1)], [SentKey("u_alice", "k1", "g1", 1, TS)])
    with pytest.raises(StoreUnavailable):
        store.append_batch([message("g1", 2)], [SentKey("u_alice", "k1", "g1", 2, TS)])
    assert store.last_seqs(["g1"]) == {"g1": 1}
