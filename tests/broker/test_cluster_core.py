"""Several broker cores sharing one real database: who takes which post, moves, fencing, hand-over.

The cores are driven as their ZeroMQ driver drives them (tests/brokercore.py), with the real
ClusterStore and MessageStore on SQLite and PostgreSQL; no sockets.
"""

from __future__ import annotations

import time
import uuid

import pytest

from chorus.broker.cluster_store import ClusterStore
from chorus.broker.clustering import ClusterMember
from chorus.broker.core import Publish
from chorus.broker.storage import MessageStore, migrate
from chorus.wire.cluster import Node, rendezvous_owner
from chorus.wire.pb import broker_pb2
from chorus.wire.topics import CLUSTER_TOPIC
from tests.brokercore import Clock, make_core, open_session, post, reply_of, request

MOVED = broker_pb2.Failure.MOVED


class Cluster:
    """Brokers named b1, b2, ... on one database; each a core with its own clock."""

    def __init__(self, engine):
        migrate(engine)
        self.engine = engine
        self.suffix = uuid.uuid4().hex[:6]  # advisory locks are database-wide: unique names
        self.tables: list[ClusterStore] = []

    def broker(self, name: str, *, lease_secs=5.0):
        tables = ClusterStore(self.engine)
        self.tables.append(tables)
        member = ClusterMember(tables, Node(f"{name}-{self.suffix}", f"tcp://{name}:1", f"tcp://{name}:2"),
                               f"{name}-{uuid.uuid4().hex[:6]}", lease_secs=lease_secs, renew_secs=0.1)
        clock = Clock()
        core = make_core(MessageStore(self.engine), clock, cluster=member)
        core.clock = clock
        return core

    def close(self):
        for tables in self.tables:
            tables.close()


@pytest.fixture
def cluster(engine):
    made = Cluster(engine)
    yield made
    made.close()


def renew(*cores):
    """Each core's next heartbeat (its clock moved past the renewal interval); their outputs."""
    outs = []
    for core in cores:
        core.clock.now += 1
        outs.append(core.tick())
    return outs


def name(core):
    return core.cluster.me.name


def group_won_by(core, cores, prefix="g"):
    """A group id whose rendezvous winner among ``cores`` is ``core``."""
    names = [name(c) for c in cores]
    for i in range(1000):
        if rendezvous_owner(f"{prefix}{i}", names) == name(core):
            return f"{prefix}{i}"
    raise AssertionError("no such group")


def seqs_stored(core, group):
    stored, _ = core._store.page(group, after_seq=0, limit=100)
    return [m.seq for m in stored]


def test_each_group_is_taken_by_its_winner_and_the_others_answer_moved_naming_it(cluster):
    one, two = cluster.broker("b1"), cluster.broker("b2")
    renew(one, two)
    renew(one, two)  # both see both
    mine, theirs = group_won_by(one, [one, two]), group_won_by(two, [one, two])
    for core in (one, two):
        open_session(core, "s1", "alice", [mine, theirs])

    accepted = reply_of(post(one, "s1", mine, "hello"))
    assert accepted.WhichOneof("kind") == "posted" and accepted.posted.seq == 1

    refused = reply_of(post(one, "s1", theirs, "hello")).failure
    assert refused.code == MOVED and refused.moved_to == name(two)
    assert seqs_stored(one, theirs) == [], "a MOVED post is not stored"
    assert reply_of(post(two, "s1", theirs, "hello")).posted.seq == 1


def test_every_broker_announces_the_live_brokers_and_answers_the_cluster_query(cluster):
    one, two = cluster.broker("b1"), cluster.broker("b2")
    first = renew(one)[0]
    renew(two)
    announced = [o for o in renew(one)[0] + first if isinstance(o, Publish) and o.topic == CLUSTER_TOPIC]
    assert announced, "a change of the live set is published"
    info = broker_pb2.ClusterInfo.FromString(announced[0].payload)
    assert {n.name for n in info.nodes} == {name(one), name(two)}
    answer = reply_of(request(two, cluster=broker_pb2.ClusterQuery())).cluster
    assert {(n.name, n.router) for n in answer.nodes} == {(name(one), "tcp://b1:1"), (name(two), "tcp://b2:1")}


def test_a_dead_brokers_groups_go_on_from_its_last_seq_on_their_new_winner(cluster):
    one, two = cluster.broker("b1", lease_secs=0.3), cluster.broker("b2")
    renew(one, two), renew(one, two)
    group = group_won_by(one, [one, two])
    for core in (one, two):
        open_session(core, "s1", "alice", [group])
    for n in range(3):
        assert reply_of(post(one, "s1", group, f"m{n}")).posted.seq == n + 1

    cluster.tables[0].close()  # b1 dies: PostgreSQL drops its lock at once; on SQLite its lease runs out
    time.sleep(0.4)
    renew(two)
    assert reply_of(post(two, "s1", group, "after")).posted.seq == 4, "no seq reused, none skipped"
    assert seqs_stored(two, group) == [1, 2, 3, 4]


def test_a_paused_owner_that_wakes_up_after_its_groups_moved_stores_and_acks_nothing(cluster):
    one, two = cluster.broker("b1", lease_secs=0.3), cluster.broker("b2")
    renew(one, two), renew(one, two)
    group = group_won_by(one, [one, two])
    for core in (one, two):
        open_session(core, "s1", "alice", [group])
    assert reply_of(post(one, "s1", group, "before")).posted.seq == 1

    # b1 is paused (no heartbeat) past its lease; on PostgreSQL its lock would still be held, so
    # drop the lock as a cut-off connection would, then let b2 take the group over.
    cluster.tables[0]._drop_lock()
    time.sleep(0.4)
    renew(two)
    assert reply_of(post(two, "s1", group, "taken over")).posted.seq == 2

    # b1 wakes up with a post in flight for the group it believes it still owns
    woke = reply_of(post(one, "s1", group, "stale"))
    assert woke.WhichOneof("kind") == "failure" and woke.failure.code == MOVED
    assert seqs_stored(two, group) == [1, 2], "the fenced batch stored nothing"
    assert [m.text for m in two._store.page(group, after_seq=0, limit=10)[0]] == ["before", "taken over"]


def test_a_broker_that_leaves_hands_its_groups_over_and_redirects_what_arrives_meanwhile(cluster):
    one, two = cluster.broker("b1"), cluster.broker("b2")
    renew(one, two), renew(one, two)
    group = group_won_by(one, [one, two])
    for core in (one, two):
        open_session(core, "s1", "alice", [group])
    assert reply_of(post(one, "s1", group, "first")).posted.seq == 1

    goodbye = one.leave()
    info = broker_pb2.ClusterInfo.FromString(
        next(o for o in goodbye if isinstance(o, Publish) and o.topic == CLUSTER_TOPIC).payload)
    assert [n.name for n in info.nodes] == [name(two)], "gateways are told at once"
    assert one.redirected_at is None
    redirected = reply_of(post(one, "s1", group, "late")).failure
    assert redirected.code == MOVED and redirected.moved_to == name(two)
    assert one.redirected_at == one.clock.now, "the driver keeps redirecting while posts still come"

    renew(two)
    assert reply_of(post(two, "s1", group, "second")).posted.seq == 2, "no wait for a lease to run out"


def test_a_joining_broker_gets_its_share_after_the_owner_flushed_and_released_it(cluster):
    one = cluster.broker("b1")
    renew(one)
    groups = [f"j{i}" for i in range(30)]
    open_session(one, "s1", "alice", groups)
    for i, group in enumerate(groups):
        assert reply_of(post(one, "s1", group, "alone", request_id=i + 1)).posted.seq == 1

    two = cluster.broker("b2")
    open_session(two, "s1", "alice", groups)
    renew(two)
    renew(one)  # b1 sees b2 and releases what b2 now wins
    renew(two)
    moved = [g for g in groups if rendezvous_owner(g, [name(one), name(two)]) == name(two)]
    assert moved and len(moved) < len(groups), "a share moves, not everything"
    assert not set(moved) & set(one.cluster.ownership.owned)
    for i, group in enumerate(moved):
        assert reply_of(post(two, "s1", group, "shared", request_id=100 + i)).posted.seq == 2
