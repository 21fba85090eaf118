"""The gateway's connection limits as decisions, without sockets: who is served, refused or
dropped; the caps per key; when a request head must be complete; the cap under the open-files limit."""

from __future__ import annotations

import asyncio
import resource

import pytest

from chorus.webgate.admission import Gate, HeadDeadline, Refusal, Tally, Ticket, connection_budget
from chorus.webgate.config import Settings
from chorus.webgate.main import serve


def gate(**caps) -> Gate:
    return Gate(**{"max_connections": 10, "max_per_address": 3, "max_refusing": 2, **caps})


def test_one_address_gets_its_cap_and_then_429_while_others_are_served():
    g = gate()
    tickets = [g.open("203.0.113.9") for _ in range(3)]
    assert all(isinstance(t, Ticket) for t in tickets)
    refusal = g.open("203.0.113.9")
    assert isinstance(refusal, Refusal)
    assert (refusal.status, refusal.code) == (429, "rate_limited")
    assert "at most 3" in refusal.message and refusal.retry_after_secs >= 1
    assert isinstance(g.open("198.51.100.1"), Ticket), "another address is served"
    g.refused()
    g.close(tickets[0])
    assert isinstance(g.open("203.0.113.9"), Ticket), "a place freed is a place again"


def test_past_the_global_cap_everyone_gets_503_until_one_closes():
    g = gate(max_connections=4, max_per_address=4, max_refusing=10)
    tickets = [g.open(f"198.51.100.{n}") for n in range(4)]
    refusal = g.open("192.0.2.1")
    assert isinstance(refusal, Refusal) and (refusal.status, refusal.code) == (503, "unavailable")
    assert "4 connections" in refusal.message
    g.close(tickets[2])
    assert isinstance(g.open("192.0.2.1"), Ticket)


def test_refusals_answered_at_once_are_bounded_and_past_that_connections_are_dropped():
    g = gate(max_connections=1, max_refusing=2)
    g.open("198.51.100.1")
    assert isinstance(g.open("192.0.2.1"), Refusal)
    assert isinstance(g.open("192.0.2.2"), Refusal)
    assert g.open("192.0.2.3") is None, "nothing can be answered: dropped"
    g.refused()
    assert isinstance(g.open("192.0.2.3"), Refusal), "an answered refusal is gone: room to answer again"


def test_an_exempt_peer_such_as_a_trusted_proxy_is_held_only_to_the_global_cap():
    g = gate(max_connections=5, max_per_address=1)
    assert all(isinstance(g.open("10.0.0.2", exempt=True), Ticket) for _ in range(5))
    assert g.open("10.0.0.2", exempt=True).status == 503
    assert g.from_address("10.0.0.2") == 0


def test_counts_go_back_once_and_an_ipv4_mapped_peer_counts_as_its_ipv4_address():
    g = gate(max_per_address=2)
    first = g.open("::ffff:192.0.2.7")
    g.open("192.0.2.7")
    assert g.from_address("192.0.2.7") == 2
    assert isinstance(g.open("192.0.2.7"), Refusal)
    g.close(first)
    g.close(first)
    assert (g.served, g.from_address("192.0.2.7")) == (1, 1)


def test_a_tally_caps_each_key_and_forgets_keys_at_zero():
    sessions = Tally(2)
    assert [sessions.add("alice") for _ in range(3)] == [True, True, False]
    assert sessions.add("bob")
    sessions.remove("alice")
    assert sessions.add("alice") and not sessions.add("alice")
    for _ in range(2):
        sessions.remove("alice")
    sessions.remove("bob")
    sessions.remove("nobody")
    assert len(sessions) == 0 and sessions.count("alice") == 0
    with pytest.raises(ValueError):
        Tally(0)


def test_the_head_deadline_runs_from_accept_and_stops_once_the_head_is_in():
    head = HeadDeadline(10.0, now=100.0)
    assert head.deadline == 110.0
    assert not head.data(105.0), "more bytes of the same head do not extend the deadline"
    assert not head.expired(109.9) and head.expired(110.0)
    head.head_received()
    assert head.deadline is None and not head.expired(1e9), "a request being handled has no head deadline"
    assert not head.data(200.0), "body or WebSocket bytes start nothing"


def test_after_an_answer_the_next_heads_first_byte_starts_a_new_deadline():
    head = HeadDeadline(10.0, now=0.0)
    head.head_received()
    head.answered()
    assert head.deadline is None and not head.expired(500.0), "idle keep-alive: aiohttp's timeout, not ours"
    assert head.data(600.0) and head.deadline == 610.0
    assert not head.data(605.0) and head.deadline == 610.0


def test_the_global_cap_stays_below_the_open_files_limit():
    assert connection_budget(1024, 256, None) == 768
    assert connection_budget(1024, 256, 500) == 500
    with pytest.raises(ValueError, match=r"--max-connections \(\$CHORUS_MAX_CONNECTIONS\) is 900, more than .* "
                                         r"1024 \(ulimit -n\) - 256 reserved = 768"):
        connection_budget(1024, 256, 900)
    with pytest.raises(ValueError, match=r"no room for connections .* --reserved-fds \(\$CHORUS_RESERVED_FDS\)"):
        connection_budget(200, 256, None)


def test_a_gateway_asked_for_more_connections_than_it_can_open_files_for_stops_and_says_why(capsys):
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        pytest.skip("no hard open-files limit to exceed")
    assert asyncio.run(serve(Settings(port=0, max_connections=hard))) == 2
    err = capsys.readouterr().err
    assert f"--max-connections ($CHORUS_MAX_CONNECTIONS) is {hard}, more than the open-files limit allows" in err
