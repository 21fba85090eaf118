"""Exactly-once posts: the broker core with idempotency keys, on the in-memory store.

A repeat is a post whose key the same sender already used: it must get the
original ack (group, seq, ts), store nothing and publish nothing, whichever
session, gateway or broker process it comes through. The real store's side
(keys in the same transaction as their messages) is in test_storage.py; the
whole path across a broker kill -9 in tests/test_exactly_once.py.
"""

from __future__ import annotations

from chorus.wire.pb import broker_pb2
from brokercore import GW, Clock, acks_of, deliveries_of, hello, make_core, open_session, request


def send(core, session_id, group, text, key, request_id, identity=GW):
    return request(core, identity, request_id=request_id, post=broker_pb2.Post(
        session_id=session_id, group_id=group, text=text, idempotency_key=key))


def system(core, name, text, key, request_id):
    return request(core, request_id=request_id, system_post=broker_pb2.SystemPost(
        group_id="g1", sender_name=name, text=text, idempotency_key=key))


def posted(outputs, request_id) -> broker_pb2.Posted:
    reply = acks_of(outputs)[request_id]
    assert reply.WhichOneof("kind") == "posted", reply
    return reply.posted


def test_a_repeat_in_a_later_round_gets_the_original_ack_and_nothing_is_published(fake_store):
    core = make_core(fake_store)
    open_session(core, "s1", "alice", ["g1"])
    first = send(core, "s1", "g1", "hello", "k-1", 10) + core.flush()
    again = send(core, "s1", "g1", "hello", "k-1", 11) + core.flush()
    original, repeat = posted(first, 10), posted(again, 11)
    assert (repeat.group_id, repeat.seq, repeat.ts_ms) == (original.group_id, original.seq, original.ts_ms)
    assert (original.repeat, repeat.repeat) == (False, True)
    assert deliveries_of(again) == []
    assert fake_store.seqs_of("g1") == [1]


def test_a_repeat_within_one_round_is_answered_like_the_first(fake_store):
    core = make_core(fake_store)
    open_session(core, "s1", "alice", ["g1"])
    send(core, "s1", "g1", "twice", "k-1", 10)
    send(core, "s1", "g1", "other", "k-2", 11)
    send(core, "s1", "g1", "twice", "k-1", 12)
    out = core.flush()
    assert [posted(out, i).seq for i in (10, 11, 12)] == [1, 2, 1]
    assert [d.text for d in deliveries_of(out)] == ["twice", "other"]
    assert fake_store.find_keys_calls == 1, "one lookup for the whole round"


def test_the_key_belongs_to_the_account_not_the_session_or_gateway(fake_store):
    core = make_core(fake_store)
    open_session(core, "s1", "alice", ["g1"])
    request(core, b"gw-2", hello=broker_pb2.Hello(gateway_id="gw2"))
    open_session(core, "s9", "alice", ["g1"], identity=b"gw-2")
    open_session(core, "s2", "bob", ["g1"])
    first = send(core, "s1", "g1", "hi", "same", 10) + core.flush()
    other_gateway = send(core, "s9", "g1", "hi", "same", 11, identity=b"gw-2") + core.flush()
    bob = send(core, "s2", "g1", "hi", "same", 12) + core.flush()
    assert posted(other_gateway, 11).seq == posted(first, 10).seq == 1
    assert posted(bob, 12).seq == 2, "another account's key is its own"


def test_a_restarted_broker_remembers_the_keys(fake_store):
    first = make_core(fake_store)
    open_session(first, "s1", "alice", ["g1"])
    original = posted(send(first, "s1", "g1", "hi", "k", 10) + first.flush(), 10)
    restarted = make_core(fake_store)
    open_session(restarted, "s1", "alice", ["g1"])
    assert posted(send(restarted, "s1", "g1", "hi", "k", 11) + restarted.flush(), 11) == \
        broker_pb2.Posted(group_id="g1", seq=original.seq, ts_ms=original.ts_ms, repeat=True)


def test_a_commit_whose_answer_was_lost_is_found_by_the_retry_not_stored_twice(fake_store):
    """The ambiguous failure: the commit landed, the driver reported an error, the sender was
    told UNAVAILABLE and retries with its key. Without keys this stored the message twice."""
    core = make_core(fake_store)
    open_session(core, "s1", "alice", ["g1"])
    real_append = fake_store.append_batch

    def append_then_fail(messages, keys=(), fence=None):
        real_append(messages, keys, fence)
        raise fake_store_error()
    fake_store.append_batch = append_then_fail
    lost = send(core, "s1", "g1", "important", "k-7", 10) + core.flush()
    assert acks_of(lost)[10].failure.code == broker_pb2.Failure.UNAVAILABLE
    fake_store.append_batch = real_append
    retry = send(core, "s1", "g1", "important", "k-7", 11) + core.flush()
    assert posted(retry, 11).seq == 1 and posted(retry, 11).repeat
    assert fake_store.seqs_of("g1") == [1]
    assert posted(send(core, "s1", "g1", "next", "k-8", 12) + core.flush(), 12).seq == 2


def test_backends_keys_are_per_sender_name(fake_store):
    core = make_core(fake_store)
    a = posted(system(core, "Billing", "due", "inv-1", 10) + core.flush(), 10)
    b = posted(system(core, "Billing", "due", "inv-1", 11) + core.flush(), 11)
    c = posted(system(core, "Roster", "due", "inv-1", 12) + core.flush(), 12)
    assert (a.seq, b.seq, b.repeat, c.seq) == (1, 1, True, 2)


def test_keys_are_forgotten_after_the_retention(fake_store):
    clock = Clock()
    core = make_core(fake_store, clock, key_retention_secs=3600, key_purge_every_secs=60)
    wall = {"ms": 1_700_000_000_000}
    core._posts._wall_clock_ms = lambda: wall["ms"]
    open_session(core, "s1", "alice", ["g1"])
    send(core, "s1", "g1", "old", "k", 10)
    core.flush()
    wall["ms"] += 3_600_001
    clock.now += 61
    core.tick()
    assert fake_store.keys == {}
    hello(core)  # an hour of silence expired the gateway too
    open_session(core, "s1", "alice", ["g1"])
    assert posted(send(core, "s1", "g1", "old", "k", 11) + core.flush(), 11).seq == 2


def test_keys_past_the_limit_or_with_control_characters_are_refused(fake_store):
    core = make_core(fake_store)
    open_session(core, "s1", "alice", ["g1"])
    for key in ("k" * 65, "a\u0000b"):
        failure = acks_of(send(core, "s1", "g1", "hi", key, 10))[10].failure
        assert failure.code == broker_pb2.Failure.BAD_REQUEST and "idempotency_key" in failure.message


def fake_store_error():
    from chorus.broker.errors import StoreUnavailable
    return StoreUnavailable("connection lost after commit")
