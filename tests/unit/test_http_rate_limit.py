"""The token bucket per key: a burst of one second's worth, refilled at the rate; 429 beyond."""

import pytest

from streams.http.errors import ApiError
from streams.http.operations import spend_or_refuse
from streams.rate_limit import MAX_KEYS, RateLimiter, TokenBucket


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_of_one_seconds_worth_passes_then_it_is_429():
    limiter = RateLimiter(3, Clock())
    for _ in range(3):
        spend_or_refuse(limiter, "k", "per credential")
    with pytest.raises(ApiError) as caught:
        spend_or_refuse(limiter, "k", "per credential")
    assert caught.value.status == 429 and caught.value.headers["Retry-After"] == "1"
    assert "at most 3 requests per second per credential" in caught.value.message


def test_tokens_come_back_at_the_rate():
    clock = Clock()
    limiter = RateLimiter(2, clock)
    assert (limiter.take("k"), limiter.take("k")) == (0.0, 0.0)
    clock.now = 0.5
    assert limiter.take("k") == 0.0
    assert limiter.take("k") == pytest.approx(0.5)


def test_a_refused_request_spends_nothing():
    clock = Clock()
    limiter = RateLimiter(1, clock)
    limiter.take("k")
    for _ in range(10):
        assert limiter.take("k") > 0
    clock.now = 1.0
    assert limiter.take("k") == 0.0


def test_each_credential_has_its_own_bucket():
    limiter = RateLimiter(1, Clock())
    assert (limiter.take("a"), limiter.take("b")) == (0.0, 0.0)


def test_a_slow_rate_asks_to_wait_long_enough():
    limiter = RateLimiter(0.1, Clock())
    limiter.take("k")
    with pytest.raises(ApiError) as caught:
        spend_or_refuse(limiter, "k", "per credential")
    assert caught.value.headers["Retry-After"] == "10"


def test_a_rate_of_zero_switches_the_limit_off():
    limiter = RateLimiter(0, Clock())
    assert all(limiter.take("k") == 0.0 for _ in range(1000))


def test_memory_stays_bounded_by_forgetting_buckets_that_refilled():
    clock = Clock()
    limiter = RateLimiter(10, clock)
    for i in range(MAX_KEYS):
        limiter.take(f"address:{i}")
    clock.now = 1.0  # every bucket is full again
    limiter.take("address:new")
    assert len(limiter) == 1


def test_a_reservation_runs_into_debt_so_senders_queue():
    bucket = TokenBucket(rate=2, burst=1)
    assert bucket.reserve(0.0) == 0.0
    assert bucket.reserve(0.0) == pytest.approx(0.5)
    assert bucket.reserve(0.0) == pytest.approx(1.0)
