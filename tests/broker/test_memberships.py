"""The broker's membership table on its own, and the core deciding posts by it (not by a session's claim)."""

from __future__ import annotations

from brokercore import acks_of, change, make_core, open_session, post, reply_of, request, snapshot
from chorus.broker.memberships import MembershipTable
from chorus.wire.pb import broker_pb2


def test_a_snapshot_counts_only_when_its_last_page_is_in():
    table = MembershipTable()
    table.snapshot_page(7, [("g1", ["ann"])], first=True, last=False)
    assert not table.complete and not table.is_member("ann", "g1")
    table.snapshot_page(7, [("g2", ["bob"]), ("g1", ["cid"])], first=False, last=True)
    assert table.complete
    assert table.members_of("g1") == {"ann", "cid"} and table.members_of("g2") == {"bob"}


def test_changes_during_a_snapshot_are_not_undone_by_it():
    table = MembershipTable()
    table.snapshot_page(1, [("g1", ["ann", "bob"])], first=True, last=True)
    table.snapshot_page(2, [("g1", ["ann", "bob"])], first=True, last=False)  # read before the changes
    table.change("cid", "g1", joined=True)
    table.change("bob", "g1", joined=False)
    assert table.members_of("g1") == {"ann", "cid"}, "the current table follows changes at once"
    table.snapshot_page(2, [], first=False, last=True)
    assert table.members_of("g1") == {"ann", "cid"}, "and so does the snapshot swapped in"


def test_a_new_first_page_starts_over_and_stray_pages_are_ignored():
    table = MembershipTable()
    table.snapshot_page(1, [("g1", ["ann"])], first=True, last=False)
    table.snapshot_page(2, [("g2", ["bob"])], first=True, last=False)  # the sender restarted
    table.snapshot_page(1, [("g3", ["old"])], first=False, last=True)  # a page of the abandoned one
    assert not table.complete
    table.snapshot_page(2, [], first=False, last=True)
    assert (table.members_of("g1"), table.members_of("g2"), table.members_of("g3")) == (set(), {"bob"}, set())


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
