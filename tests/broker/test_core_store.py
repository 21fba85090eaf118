"""The broker core on the real MessageStore (SQLite and PostgreSQL): what it stores is what
History returns, and sequence numbers continue without gaps in a new core (a restart)."""

from __future__ import annotations

import pytest

from brokercore import joined_groups
from chorus.broker.core import BrokerCore, Publish, Reply
from chorus.broker.posting import PendingPost
from chorus.broker.storage import MessageStore, migrate
from chorus.wire.pb import broker_pb2

GW = b"gw"


@pytest.fixture
def store(engine):
    migrate(engine)
    return MessageStore(engine)


def new_core(store) -> BrokerCore:
    core = BrokerCore(broker_id="b", store=store, gateway_timeout_secs=10, max_text_chars=100)
    send(core, hello=broker_pb2.Hello(gateway_id="gw"))
    send(core, membership_snapshot=broker_pb2.MembershipSnapshot(  # what the membership service says
        snapshot_id=1, first=True, last=True,
        groups=joined_groups({g: ["u_alice"] for g in ("g1", "g2")})))
    person = broker_pb2.Person(id="u_alice", username="alice", display_name="Alice")
    send(core, open_session=broker_pb2.OpenSession(session_id="s1", account=person, group_ids=["g1", "g2"]))
    return core


def send(core, request_id=1, **kind):
    return core.handle_request(GW, broker_pb2.GatewayRequest(request_id=request_id, **kind).SerializeToString())


def replies(outputs) -> dict[int, broker_pb2.BrokerReply]:
    parsed = (broker_pb2.BrokerReply.FromString(o.payload) for o in outputs if isinstance(o, Reply))
    return {r.request_id: r for r in parsed}


def test_one_round_is_stored_then_published_and_history_returns_it(store):
    core = new_core(store)
    for i, group in enumerate(["g1", "g2", "g1", "g1"], start=10):
        assert send(core, request_id=i, post=broker_pb2.Post(session_id="s1", group_id=group, text=f"t{i}")) == []
    out = core.flush()
    assert {i: (r.posted.group_id, r.posted.seq) for i, r in replies(out).items()} == {
        10: ("g1", 1), 11: ("g2", 1), 12: ("g1", 2), 13: ("g1", 3)}
    assert sum(isinstance(o, Publish) for o in out) == 4
    page = replies(send(core, request_id=2, history=broker_pb2.History(group_id="g1")))[2].messages
    assert [(m.seq, m.text, m.sender.display_name) for m in page.messages] == [
        (3, "t13", "Alice"), (2, "t12", "Alice"), (1, "t10", "Alice")]


def test_a_new_core_on_the_same_store_continues_every_groups_seqs(store):
    first = new_core(store)
    for group in ["g1", "g1", "g2"]:
        send(first, post=broker_pb2.Post(session_id="s1", group_id=group, text="before"))
    first.flush()
    restarted = new_core(store)
    out = []
    for i, group in enumerate(["g2", "g1", "g1"], start=1):
        out += send(restarted, request_id=i, post=broker_pb2.Post(session_id="s1", group_id=group, text="after"))
    out += restarted.flush()
    assert {i: r.posted.seq for i, r in replies(out).items()} == {1: 2, 2: 3, 3: 4}
    assert store.last_seqs(["g1", "g2"]) == {"g1": 4, "g2": 2}


def test_read_markers_and_states_through_the_core(store):
    core = new_core(store)
    send(core, system_post=broker_pb2.SystemPost(group_id="g1", sender_name="Bot", text="one"))
    send(core, system_post=broker_pb2.SystemPost(group_id="g1", sender_name="Bot", text="two"))
    core.flush()
    send(core, mark_read=broker_pb2.MarkRead(account_id="u_alice", group_id="g1", seq=5))
    send(core, mark_read=broker_pb2.MarkRead(account_id="u_alice", group_id="g1", seq=1))
    states = replies(send(core, request_id=3, group_states=broker_pb2.GroupStates(
        account_id="u_alice", group_ids=["g1", "g2"])))[3].states
    assert {s.group_id: (s.last_seq, s.read_seq) for s in states.groups} == {"g1": (2, 2), "g2": (0, 0)}


@pytest.mark.postgres
def test_a_batch_postgresql_refuses_fails_alone_and_the_next_one_is_stored(postgres_engine):
    """PostgreSQL cannot store NUL in text (the core refuses it first; this goes around the
    core, as a bug of ours might): the batch is refused UNAVAILABLE, nothing is published,
    and the next batch is stored with the next seq, on the same core."""
    migrate(postgres_engine)
    store = MessageStore(postgres_engine)
    core = new_core(store)
    send(core, request_id=1, post=broker_pb2.Post(session_id="s1", group_id="g1", text="fine"))
    core.flush()
    sender = broker_pb2.Person(id="u_alice", username="alice", display_name="Alice")
    core._posts.add(PendingPost(GW, 5, "g1", sender, "a\u0000b"))
    out = core.flush()
    assert not any(isinstance(o, Publish) for o in out)
    assert replies(out)[5].failure.code == broker_pb2.Failure.UNAVAILABLE
    send(core, request_id=6, post=broker_pb2.Post(session_id="s1", group_id="g1", text="still here"))
    assert replies(core.flush())[6].posted.seq == 2
    assert [m.text for m in store.page("g1", after_seq=0, limit=10)[0]] == ["fine", "still here"]
