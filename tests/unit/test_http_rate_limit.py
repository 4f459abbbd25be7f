"""The token bucket: a burst of one second's worth, refilled at the rate, per credential."""

import pytest

from streams.http.errors import ApiError
from streams.http.rate_limit import RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_of_one_seconds_worth_passes_then_it_is_429():
    limiter = RateLimiter(3, Clock())
    for _ in range(3):
        limiter.take("k")
    with pytest.raises(ApiError) as caught:
        limiter.take("k")
    assert caught.value.status == 429 and caught.value.headers["Retry-After"] == "1"


def test_tokens_come_back_at_the_rate():
    clock = Clock()
    limiter = RateLimiter(2, clock)
    limiter.take("k"), limiter.take("k")
    clock.now = 0.5
    limiter.take("k")
    with pytest.raises(ApiError):
        limiter.take("k")


def test_each_credential_has_its_own_bucket():
    limiter = RateLimiter(1, Clock())
    limiter.take("a")
    limiter.take("b")


def test_a_slow_rate_asks_to_wait_long_enough():
    limiter = RateLimiter(0.1, Clock())
    limiter.take("k")
    with pytest.raises(ApiError) as caught:
        limiter.take("k")
    assert caught.value.headers["Retry-After"] == "10"


def test_a_rate_of_zero_switches_the_limit_off():
    limiter = RateLimiter(0, Clock())
    for _ in range(1000):
        limiter.take("k")
