"""Rate-limit tables are keyed by outside input, so they must stay bounded and forget.

A bucket (webhook) or window (email) that holds no more information than a fresh one is
dropped; past a hard cap on keys the least recently used goes. A fake clock drives both.
"""

from __future__ import annotations

import pytest

from transports.email.rate_limit import RateLimit
from transports.webhook.rate_limit import RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_webhook_buckets_are_dropped_once_full_again() -> None:
    clock = Clock()
    limiter = RateLimiter(clock)
    for n in range(100):
        assert limiter.take(f"hook{n}", 60) == 0
    assert len(limiter) == 100
    clock.now += 59
    limiter.take("hook0", 60)
    assert len(limiter) == 100  # none refilled yet: each still limits its hook
    clock.now += 1.5
    limiter.take("late", 60)
    # Refilled buckets are dropped; hook0 was used 1.5 s ago and is kept.
    assert len(limiter) == 2


def test_webhook_limit_still_holds_within_the_minute() -> None:
    clock = Clock()
    limiter = RateLimiter(clock)
    assert [limiter.take("alerts", 2) for _ in range(2)] == [0, 0]
    assert limiter.take("alerts", 2) == 30.0
    for n in range(50):
        limiter.take(f"other{n}", 2)
    clock.now += 10
    assert limiter.take("alerts", 2) == pytest.approx(20.0)


def test_many_distinct_webhook_keys_stay_under_the_cap() -> None:
    clock = Clock()
    limiter = RateLimiter(clock, max_keys=50)
    for n in range(10_000):
        assert limiter.take(f"hook{n}", 1) == 0
        assert len(limiter) <= 50
    assert len(limiter) == 50
    # The most recent are the ones kept; the oldest were let go.
    assert limiter.take("hook9999", 1) > 0
    assert limiter.take("hook0", 1) == 0


def test_forgetting_a_deleted_hook() -> None:
    limiter = RateLimiter(Clock())
    limiter.take("gone", 60)
    limiter.forget("gone")
    limiter.forget("never-seen")
    assert len(limiter) == 0


def test_email_windows_are_dropped_once_empty() -> None:
    clock = Clock()
    limit = RateLimit(3, clock, window=3600.0)
    for n in range(100):
        assert limit.try_acquire(f"user{n}@example.org") is None
    assert len(limit) == 100
    clock.now += 3599
    limit.try_acquire("user0@example.org")
    assert len(limit) == 100
    clock.now += 2
    limit.try_acquire("late@example.org")
    assert len(limit) == 2  # user0 sent 2 s ago; the rest have nothing left in their window


def test_email_limit_still_holds_and_release_gives_back() -> None:
    clock = Clock()
    limit = RateLimit(2, clock, window=3600.0)
    assert limit.try_acquire("alice@example.org") is None
    clock.now += 100
    assert limit.try_acquire("alice@example.org") is None
    assert limit.try_acquire("alice@example.org") == 3500.0
    limit.release("alice@example.org")
    assert limit.try_acquire("alice@example.org") is None
    assert limit.try_acquire("alice@example.org") == 3500.0


def test_a_released_only_count_leaves_no_window() -> None:
    limit = RateLimit(5, Clock())
    assert limit.try_acquire("bob@example.org") is None
    limit.release("bob@example.org")
    limit.release("never@example.org")
    assert len(limit) == 0


def test_many_distinct_email_senders_stay_under_the_cap() -> None:
    clock = Clock()
    limit = RateLimit(1, clock, max_keys=50)
    for n in range(10_000):
        clock.now += 0.01
        limit.try_acquire(f"user{n}@example.org")
        assert len(limit) <= 50
    assert limit.try_acquire("user9999@example.org") is not None  # the newest is kept
