"""Leases, owners and fencing in the real database (SQLite and PostgreSQL, see conftest's engine)."""

from __future__ import annotations

import time

import pytest

from chorus.broker.cluster_store import Claimed, ClusterStore, HeldBy
from chorus.broker.ownership import Fence
from chorus.broker.records import StoredMessage
from chorus.broker.records import Fenced
from chorus.broker.storage import MessageStore, migrate
from chorus.common.db import create_db_engine
from chorus.wire.cluster import Node

LEASE_MS = 3000
B1 = Node("b1", "tcp://h:1", "tcp://h:2", "h:3")
B2 = Node("b2", "tcp://h:4", "tcp://h:5", "h:6")


@pytest.fixture
def stores(engine):
    migrate(engine)
    made = []

    def make():
        made.append(ClusterStore(engine))
        return made[-1]
    yield make, MessageStore(engine)
    for store in made:
        store.close()


def message(group, seq):
    return StoredMessage(group, seq, 1, "u", "u", "U", f"{group}#{seq}")


def test_a_heartbeat_makes_a_node_live_and_lists_the_live_ones(stores):
    make, _ = stores
    one, two = make(), make()
    assert one.heartbeat(B1, "i1", LEASE_MS) == [Node("b1", "tcp://h:1", "tcp://h:2", "h:3", "i1")]
    assert {n.name for n in two.heartbeat(B2, "i2", LEASE_MS)} == {"b1", "b2"}


def test_a_group_has_one_owner_and_a_live_one_is_left_alone(stores):
    make, _ = stores
    one, two = make(), make()
    one.heartbeat(B1, "i1", LEASE_MS)
    two.heartbeat(B2, "i2", LEASE_MS)
    assert one.claim(["g1"], "b1", "i1") == {"g1": Claimed(1, 0)}
    assert one.claim(["g1"], "b1", "i1") == {"g1": Claimed(1, 0)}, "claiming what we own changes nothing"
    assert two.claim(["g1", "g2"], "b2", "i2") == {"g1": HeldBy("b1"), "g2": Claimed(1, 0)}


def test_a_released_or_dead_owners_group_is_taken_with_a_new_epoch(stores):
    make, _ = stores
    one, two = make(), make()
    one.heartbeat(B1, "i1", 1500)  # a short lease, and no renewal: b1 dies
    two.heartbeat(B2, "i2", LEASE_MS)
    one.claim(["g1", "g2"], "b1", "i1")
    one.release(["g2"], "b1", "i1")
    assert two.claim(["g2"], "b2", "i2") == {"g2": Claimed(2, 0)}, "released: no waiting"
    assert two.claim(["g1"], "b2", "i2") == {"g1": HeldBy("b1")}, "b1's lease still runs"
    time.sleep(1.6)
    assert two.claim(["g1"], "b2", "i2") == {"g1": Claimed(2, 0)}


def test_a_restarted_node_takes_its_own_groups_back_at_once(stores):
    make, _ = stores
    before, after = make(), make()
    before.heartbeat(B1, "old", LEASE_MS)
    before.claim(["g1"], "b1", "old")
    before.close()  # the process died; its lease has seconds left
    after.heartbeat(B1, "new", LEASE_MS)
    assert after.claim(["g1"], "b1", "new") == {"g1": Claimed(2, 0)}


def test_a_fenced_batch_stores_nothing_once_the_group_moved(stores):
    make, messages = stores
    one, two = make(), make()
    one.heartbeat(B1, "i1", 200)
    two.heartbeat(B2, "i2", LEASE_MS)
    one.claim(["g1", "g2"], "b1", "i1")
    messages.append_batch([message("g1", 1), message("g2", 1)], fence=Fence("b1", "i1", {"g1": 1, "g2": 1}))
    time.sleep(0.3)  # b1 is paused past its lease; b2 takes g1
    assert two.claim(["g1"], "b2", "i2") == {"g1": Claimed(2, 1)}, "the seq goes on from the owner row"
    with pytest.raises(Fenced) as fenced:  # b1 wakes up and commits its next batch
        messages.append_batch([message("g1", 2), message("g2", 2)], fence=Fence("b1", "i1", {"g1": 1, "g2": 1}))
    assert fenced.value.groups == ["g1"]
    assert messages.last_seqs(["g1", "g2"]) == {"g1": 1, "g2": 1}, "nothing of that batch was stored"
    messages.append_batch([message("g1", 2)], fence=Fence("b2", "i2", {"g1": 2}))
    assert two.last_seqs(["g1", "g2"]) == {"g1": 2, "g2": 1}


def test_leaving_releases_everything_and_drops_the_lease(stores):
    make, _ = stores
    one, two = make(), make()
    one.heartbeat(B1, "i1", LEASE_MS)
    two.heartbeat(B2, "i2", LEASE_MS)
    one.claim(["g1"], "b1", "i1")
    one.leave("b1", "i1")
    assert [n.name for n in two.heartbeat(B2, "i2", LEASE_MS)] == ["b2"]
    assert two.claim(["g1"], "b2", "i2") == {"g1": Claimed(2, 0)}


def test_groups_with_messages_from_before_the_cluster_tables_go_on_from_their_last_seq(stores):
    make, messages = stores
    messages.append_batch([message("g1", 1), message("g1", 2)])  # no fence: stored before ownership
    one = make()
    one.heartbeat(B1, "i1", LEASE_MS)
    assert one.claim(["g1"], "b1", "i1") == {"g1": Claimed(1, 2)}


@pytest.mark.postgres
def test_on_postgresql_a_crashed_broker_is_dead_at_once_not_when_its_lease_runs_out(postgres_engine):
    migrate(postgres_engine)
    crashed, survivor = ClusterStore(postgres_engine), ClusterStore(postgres_engine)
    try:
        crashed.heartbeat(B1, "i1", 60_000)  # a lease of a minute
        crashed.claim(["g1"], "b1", "i1")
        assert {n.name for n in survivor.heartbeat(B2, "i2", 60_000)} == {"b1", "b2"}
        crashed.close()  # its connection drops, as a kill -9's would: the advisory lock goes
        assert [n.name for n in survivor.heartbeat(B2, "i2", 60_000)] == ["b2"]
        assert survivor.claim(["g1"], "b2", "i2") == {"g1": Claimed(2, 0)}
    finally:
        survivor.close()


@pytest.mark.postgres
def test_on_postgresql_two_brokers_cannot_run_under_one_name(postgres_engine):
    migrate(postgres_engine)
    first, second = ClusterStore(postgres_engine), ClusterStore(postgres_engine)
    try:
        first.heartbeat(B1, "i1", LEASE_MS)
        with pytest.raises(Exception, match="another broker named 'b1' is running"):
            second.heartbeat(B1, "i2", LEASE_MS)
    finally:
        first.close()
        second.close()


def test_the_sqlite_clock_is_milliseconds_of_the_unix_epoch(tmp_path):
    engine = create_db_engine(f"sqlite:///{tmp_path / 'c.db'}")
    migrate(engine)
    store = ClusterStore(engine)
    store.heartbeat(B1, "i1", 0)
    with engine.connect() as conn:
        from sqlalchemy import select

        from chorus.broker.storage import NODES
        expires = conn.execute(select(NODES.c.lease_expires_ms)).scalar()
    assert abs(expires - time.time() * 1000) < 2000
    engine.dispose()
