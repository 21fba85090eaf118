"""The subscription barrier answers a Sync only after its marker subscription."""

from chorus.broker.barrier import SubscriptionBarrier


def test_sync_before_marker_waits_for_the_marker():
    barrier = SubscriptionBarrier(ttl_secs=30)
    assert barrier.sync_requested(b"n1", "waiter", now=0.0) is False
    assert barrier.marker_seen(b"other", now=0.1) is None
    assert barrier.marker_seen(b"n1", now=0.2) == "waiter"
    assert len(barrier) == 1, "only the unrelated marker is left"


def test_marker_before_sync_answers_at_once():
    barrier = SubscriptionBarrier(ttl_secs=30)
    assert barrier.marker_seen(b"n1", now=0.0) is None
    assert barrier.sync_requested(b"n1", "waiter", now=0.1) is True
    assert len(barrier) == 0


def test_unmatched_entries_expire():
    barrier = SubscriptionBarrier(ttl_secs=5)
    barrier.marker_seen(b"lost-sync", now=0.0)
    barrier.sync_requested(b"lost-marker", "w", now=0.0)
    assert barrier.expire(now=4.0) == []
    assert barrier.expire(now=6.0) == ["w"]
    assert len(barrier) == 0
