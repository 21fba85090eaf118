"""Which membership events are news, without a hub: per (account, group), only a higher number."""

from __future__ import annotations

from chorus.webgate.membership_order import ChangeOrder


def test_only_a_higher_number_for_the_same_pair_is_news():
    order = ChangeOrder()
    assert order.is_news("ann", "g1", 5)
    order.applied("ann", "g1", 5)
    assert not order.is_news("ann", "g1", 5), "a repeat"
    assert not order.is_news("ann", "g1", 4), "older"
    assert order.is_news("ann", "g1", 6)
    assert order.is_news("ann", "g2", 1) and order.is_news("bob", "g1", 1), "other pairs are their own"


def test_recording_an_older_number_never_moves_a_pair_back():
    order = ChangeOrder()
    order.applied("ann", "g1", 9)
    order.applied("ann", "g1", 3)
    assert not order.is_news("ann", "g1", 8)


def test_a_forgotten_account_starts_again():
    order = ChangeOrder()
    order.applied("ann", "g1", 9)
    order.forget("ann")
    assert order.is_news("ann", "g1", 1) and order.accounts() == 0
