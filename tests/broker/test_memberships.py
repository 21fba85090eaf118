"""The broker's membership table on its own, and the core deciding posts by it (not by a session's claim)."""

from __future__ import annotations

from brokercore import acks_of, change, make_core, open_session, post, reply_of, request, snapshot
from chorus.broker.core import Publish
from chorus.broker.memberships import MembershipTable
from chorus.wire.pb import broker_pb2


def joined(*accounts_and_numbers):
    """Snapshot entries: each (account, number) in the group."""
    return [(account, True, number) for account, number in accounts_and_numbers]


def test_a_snapshot_counts_only_when_its_last_page_is_in():
    table = MembershipTable()
    table.snapshot_page(7, [("g1", joined(("ann", 1)))], first=True, last=False)
    assert not table.complete
    table.snapshot_page(7, [("g2", joined(("bob", 2))), ("g1", joined(("cid", 3)))], first=False, last=True)
    assert table.complete
    assert table.members_of("g1") == {"ann", "cid"} and table.members_of("g2") == {"bob"}


def test_a_pairs_newest_change_wins_whatever_order_changes_arrive_in():
    """Two membership replicas race a join (5) and a leave (6) of one person: the broker may
    hear them either way round, and again; it ends in the state of the higher number."""
    for order in ([5, 6], [6, 5], [6, 5, 6, 5], [5, 5, 6, 6]):
        table = MembershipTable()
        applied = [table.change("ann", "g1", joined=(n == 5), change_id=n) for n in order]
        assert not table.is_member("ann", "g1"), order
        assert applied.count(True) == len(set(order[:order.index(6) + 1])), "only news is applied"


def test_a_snapshot_read_before_a_change_does_not_undo_it_and_one_read_after_does_not_lose_it():
    table = MembershipTable()
    table.snapshot_page(1, [("g1", joined(("ann", 1), ("bob", 2)))], first=True, last=True)
    table.change("cid", "g1", joined=True, change_id=3)
    table.change("bob", "g1", joined=False, change_id=4)
    # a second replica's snapshot, read before those changes, arrives after them
    table.snapshot_page(2, [("g1", joined(("ann", 1), ("bob", 2)))], first=True, last=True)
    assert table.members_of("g1") == {"ann", "cid"}
    # and a late copy of an older change arrives after a snapshot that holds a newer one
    table.snapshot_page(3, [("g1", [("ann", False, 9)])], first=True, last=True)
    table.change("ann", "g1", joined=True, change_id=1)
    assert table.members_of("g1") == {"cid"}


def test_left_pairs_stay_as_tombstones_so_an_older_join_cannot_win():
    table = MembershipTable()
    table.snapshot_page(1, [("g1", [("ann", False, 8)])], first=True, last=True)
    assert not table.change("ann", "g1", joined=True, change_id=7)
    assert table.members_of("g1") == frozenset()
    assert table.change("ann", "g1", joined=True, change_id=9)
    assert table.is_member("ann", "g1")


def test_interleaved_snapshots_complete_the_table_once_one_of_them_is_whole():
    table = MembershipTable()
    table.snapshot_page(1, [("g1", joined(("ann", 1)))], first=True, last=False)
    table.snapshot_page(3, [("g9", joined(("zed", 4)))], first=False, last=True)  # its first page went to a dead broker
    assert not table.complete
    table.snapshot_page(2, [("g2", joined(("bob", 2)))], first=True, last=False)  # another replica's
    table.snapshot_page(1, [("g3", joined(("cid", 3)))], first=False, last=True)
    assert table.complete
    table.snapshot_page(2, [], first=False, last=True)
    assert {g: table.members_of(g) for g in ("g1", "g2", "g3", "g9")} == {
        "g1": {"ann"}, "g2": {"bob"}, "g3": {"cid"}, "g9": {"zed"}}, "every page's entries are true facts"


def test_a_session_cannot_post_to_a_group_it_merely_claims(fake_store):
    core = make_core(fake_store)
    person = broker_pb2.Person(id="mallory", username="mallory", display_name="Mallory")
    request(core, open_session=broker_pb2.OpenSession(session_id="s1", account=person, group_ids=["g1"]))
    assert reply_of(post(core, "s1", "g1", "let me in")).failure.code == broker_pb2.Failure.NOT_MEMBER
    online = reply_of(request(core, request_id=3, online=broker_pb2.Online(group_id="g1")))
    assert list(online.online_members.account_ids) == [], "nor is it shown online there"
    change(core, "mallory", "g1")  # the membership service says she joined
    assert reply_of(post(core, "s1", "g1", "now I am in")).posted.seq == 1
    change(core, "mallory", "g1", joined=False)
    assert reply_of(post(core, "s1", "g1", "and out again")).failure.code == broker_pb2.Failure.NOT_MEMBER


def test_posts_wait_for_the_first_snapshot_and_are_refused_as_retryable_meanwhile(fake_store):
    core = make_core(fake_store, memberships_loaded=False)
    open_session(core, "s1", "ann", ["g1"])
    refused = reply_of(post(core, "s1", "g1", "too early")).failure
    assert refused.code == broker_pb2.Failure.NOT_READY and "loading" in refused.message
    snapshot(core, {"g1": ["ann"]})
    assert reply_of(post(core, "s1", "g1", "now")).posted.seq == 1


def test_a_snapshot_with_a_bad_id_is_refused_whole(fake_store):
    core = make_core(fake_store, memberships_loaded=False)
    out = acks_of(snapshot(core, {"g1": ["ann", ""]}))
    assert out[1].failure.code == broker_pb2.Failure.BAD_REQUEST
    assert not core.memberships.complete


def test_a_late_older_change_is_answered_done_and_tells_no_gateway(fake_store):
    core = make_core(fake_store)
    open_session(core, "s1", "ann", [])
    events = publications_of(change(core, "ann", "g1", joined=False, change_id=1_000_001))
    assert [e.change_id for e in events] == [1_000_001]
    late = change(core, "ann", "g1", joined=True, change_id=1_000_000)  # committed earlier, by another replica
    assert reply_of(late).WhichOneof("kind") == "done" and publications_of(late) == []
    assert publications_of(change(core, "ann", "g1", joined=False, change_id=1_000_001)) == [], "a repeat"
    assert reply_of(post(core, "s1", "g1", "let me in")).failure.code == broker_pb2.Failure.NOT_MEMBER


def test_an_unnumbered_change_is_refused(fake_store):
    core = make_core(fake_store)
    out = request(core, membership_change=broker_pb2.MembershipChange(
        account_id="ann", group=broker_pb2.GroupRef(id="g1", name="One"), joined=True))
    assert reply_of(out).failure.code == broker_pb2.Failure.BAD_REQUEST
    assert not core.memberships.is_member("ann", "g1")


def publications_of(outputs) -> list[broker_pb2.MembershipEvent]:
    return [broker_pb2.MembershipEvent.FromString(o.payload) for o in outputs if isinstance(o, Publish)]
