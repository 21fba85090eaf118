"""Token buckets, with time stepped by hand: no sleeping, no sockets."""

from __future__ import annotations

import pytest

from chorus.common.ratelimit import KeyedLimiter, Rate, TokenBucket


def spend(bucket_or_limiter, times: int, now: float, *key) -> list[float]:
    return [bucket_or_limiter.take(*key, now) for _ in range(times)]


def test_a_new_bucket_allows_a_burst_then_says_how_long_to_wait():
    bucket = TokenBucket(Rate(per_sec=2, burst=3), now=0.0)
    assert spend(bucket, 3, 0.0) == [0.0, 0.0, 0.0]
    assert bucket.take(0.0) == pytest.approx(0.5), "one token every half second"
    assert bucket.take(0.25) == pytest.approx(0.25), "refused attempts do not push the wait out"
    assert bucket.take(0.5) == 0.0


def test_it_refills_at_the_rate_and_never_past_the_burst():
    bucket = TokenBucket(Rate(per_sec=10, burst=5), now=0.0)
    spend(bucket, 5, 0.0)
    assert spend(bucket, 2, 0.2) == [0.0, 0.0]
    assert bucket.take(0.2) > 0
    assert spend(bucket, 5, 1000.0) == [0.0] * 5, "idle for ages: only a burst"
    assert bucket.take(1000.0) > 0


def test_a_clock_going_backwards_adds_nothing():
    bucket = TokenBucket(Rate(per_sec=1, burst=1), now=10.0)
    assert bucket.take(10.0) == 0.0
    assert bucket.take(5.0) > 0
    assert bucket.take(10.5) == pytest.approx(0.5)


def test_give_back_returns_a_token_up_to_the_burst():
    bucket = TokenBucket(Rate(per_sec=0.001, burst=2), now=0.0)
    spend(bucket, 2, 0.0)
    bucket.give_back(0.0)
    assert bucket.take(0.0) == 0.0
    bucket.give_back(0.0)
    bucket.give_back(0.0)
    bucket.give_back(0.0)
    assert spend(bucket, 3, 0.0)[:2] == [0.0, 0.0]
    assert bucket.take(0.0) > 0, "never more than the burst"


def test_rate_per_window():
    rate = Rate.per_window(10, 300)
    assert rate.burst == 10 and rate.per_sec == pytest.approx(1 / 30)


@pytest.mark.parametrize("per_sec, burst", [(0, 1), (-1, 1), (1, 0)])
def test_a_rate_that_could_never_allow_anything_is_refused(per_sec, burst):
    with pytest.raises(ValueError):
        Rate(per_sec=per_sec, burst=burst)


def test_keys_have_their_own_buckets():
    limiter = KeyedLimiter(Rate(per_sec=1, burst=2))
    assert spend(limiter, 2, 0.0, "10.0.0.1") == [0.0, 0.0]
    assert limiter.take("10.0.0.1", 0.0) > 0
    assert limiter.take("10.0.0.2", 0.0) == 0.0, "another key is not slowed"
    limiter.give_back("10.0.0.1", 0.0)
    assert limiter.take("10.0.0.1", 0.0) == 0.0
    limiter.give_back("never seen", 0.0)  # nothing to give back to: no error, no bucket
    assert len(limiter) == 2


def test_idle_keys_are_forgotten_first_when_the_limiter_is_full():
    limiter = KeyedLimiter(Rate(per_sec=1, burst=5), max_keys=3)
    limiter.take("busy", 0.0)
    for _ in range(5):
        limiter.take("drained", 0.0)
    limiter.take("idle", 0.0)
    # At t=0.5 "idle" (1 token spent) is not yet full, at t=2 "busy" and "idle" are.
    limiter.take("new", 2.0)
    assert len(limiter) == 2
    assert limiter.take("drained", 2.0) == 0.0 and limiter.take("drained", 2.0) == 0.0
    assert limiter.take("drained", 2.0) > 0, "the key still in use kept its (partly refilled) bucket"


def test_a_flood_of_distinct_keys_keeps_memory_bounded():
    limiter = KeyedLimiter(Rate(per_sec=0.001, burst=1), max_keys=100)
    for n in range(10_000):
        assert limiter.take(n, 0.0) == 0.0
    assert len(limiter) <= 100
