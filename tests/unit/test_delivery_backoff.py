"""Retry delays double from the base, stop at the cap, and jitter only within the upper half."""

from agents.sender.delivery import MAX_ATTEMPTS, RETRY_BASE_SECONDS, RETRY_CAP_SECONDS
from streams.retry import backoff


def test_delay_doubles_per_attempt():
    assert [backoff(n, first=30, cap=10_000, jitter=1.0) for n in (1, 2, 3, 4)] == [30, 60, 120, 240]


def test_delay_is_capped():
    assert backoff(40, first=30, cap=3600, jitter=1.0) == 3600


def test_jitter_keeps_the_delay_between_half_and_full():
    assert backoff(3, first=30, cap=10_000, jitter=0.0) == 60
    assert 60 < backoff(3, first=30, cap=10_000, jitter=0.5) < 120


def test_default_schedule_keeps_retrying_for_most_of_a_day_at_least():
    shortest = sum(backoff(n, first=RETRY_BASE_SECONDS, cap=RETRY_CAP_SECONDS, jitter=0.0) for n in range(1, MAX_ATTEMPTS))
    assert 18 * 3600 < shortest < 48 * 3600
