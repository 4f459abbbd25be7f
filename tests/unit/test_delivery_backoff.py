"""Retry delays double from the base, stop at the cap, and jitter only within the upper half."""

from agents.sender.delivery import MAX_ATTEMPTS, retry_delay


def test_delay_doubles_per_attempt():
    assert [retry_delay(n, 1.0, base=30, cap=10_000) for n in (1, 2, 3, 4)] == [30, 60, 120, 240]


def test_delay_is_capped():
    assert retry_delay(40, 1.0, base=30, cap=3600) == 3600


def test_jitter_keeps_the_delay_between_half_and_full():
    assert retry_delay(3, 0.0, base=30, cap=10_000) == 60
    assert 60 < retry_delay(3, 0.5, base=30, cap=10_000) < 120


def test_default_schedule_keeps_retrying_for_most_of_a_day_at_least():
    shortest = sum(retry_delay(n, 0.0) for n in range(1, MAX_ATTEMPTS))
    assert 18 * 3600 < shortest < 48 * 3600
