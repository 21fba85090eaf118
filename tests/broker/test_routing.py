"""The routing table on its own: plain objects, no sockets."""

from chorus.broker.routing import RoutingTable

GW1, GW2 = b"gw1", b"gw2"


def test_session_makes_its_account_a_member_of_every_group():
    table = RoutingTable()
    table.open_session(GW1, "s1", "alice", ["g1", "g2"])
    assert table.members_of("g1") == {"alice"}
    assert table.members_of("g2") == {"alice"}
    assert table.is_member("alice", "g2")
    assert not table.is_member("alice", "g3")


def test_members_from_several_gateways_and_sessions():
    table = RoutingTable()
    table.open_session(GW1, "s1", "alice", ["g1"])
    table.open_session(GW2, "s2", "bob", ["g1"])
    table.open_session(GW2, "s3", "alice", ["g1"])
    assert table.members_of("g1") == {"alice", "bob"}
    table.close_session(GW1, "s1")
    assert table.members_of("g1") == {"alice", "bob"}, "alice still has a session on gw2"
    table.close_session(GW2, "s3")
    assert table.members_of("g1") == {"bob"}


def test_closing_the_last_session_leaves_no_empty_group():
    table = RoutingTable()
    table.open_session(GW1, "s1", "alice", ["g1"])
    table.close_session(GW1, "s1")
    assert table.groups() == frozenset()
    assert table.session_count() == 0
    assert table.close_session(GW1, "s1") is None, "closing twice is harmless"


def test_join_and_leave_apply_to_every_session_of_the_account():
    table = RoutingTable()
    a1 = table.open_session(GW1, "s1", "alice", ["g1"])
    a2 = table.open_session(GW2, "s2", "alice", [])
    bob = table.open_session(GW1, "s3", "bob", ["g1"])
    assert table.join("alice", "g2") == 2
    assert "g2" in a1.groups and "g2" in a2.groups and "g2" not in bob.groups
    assert table.members_of("g2") == {"alice"}
    assert table.join("alice", "g2") == 0, "joining twice changes nothing"
    assert table.leave("alice", "g1") == 1
    assert table.members_of("g1") == {"bob"}
    assert table.leave("carol", "g1") == 0, "an account with no sessions is ignored"


def test_drop_gateway_forgets_all_its_sessions():
    table = RoutingTable()
    table.open_session(GW1, "s1", "alice", ["g1", "g2"])
    table.open_session(GW1, "s2", "bob", ["g2"])
    table.open_session(GW2, "s3", "carol", ["g2"])
    assert table.drop_gateway(GW1) == 2
    assert table.members_of("g1") == frozenset()
    assert table.members_of("g2") == {"carol"}
    assert table.session(GW1, "s1") is None
    table.join("alice", "g3")
    assert table.members_of("g3") == frozenset(), "dropped sessions do not come back on join"


def test_reopening_a_session_replaces_its_groups():
    table = RoutingTable()
    table.open_session(GW1, "s1", "alice", ["g1"])
    table.open_session(GW1, "s1", "alice", ["g2"])
    assert table.members_of("g1") == frozenset()
    assert table.members_of("g2") == {"alice"}
    assert table.session_count() == 1
