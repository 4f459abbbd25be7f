"""Frequency-limit arithmetic and the relay's token bucket."""

from agents.sender.limits import DAY, WEEK, FrequencyLimits, next_allowed_at
from streams.rate_limit import TokenBucket, schedule

NOW = 1_000_000.0


def test_no_limits_always_allows():
    assert next_allowed_at(FrequencyLimits(), [NOW - 1] * 100, NOW) is None


def test_under_the_daily_limit_allows():
    assert next_allowed_at(FrequencyLimits(per_day=2), [NOW - 10], NOW) is None


def test_at_the_daily_limit_waits_until_the_oldest_counted_send_leaves_the_window():
    sent = [NOW - 100, NOW - 5000, NOW - 2 * DAY]
    assert next_allowed_at(FrequencyLimits(per_day=2), sent, NOW) == NOW - 5000 + DAY


def test_weekly_limit_counts_seven_days():
    sent = [NOW - 3 * DAY, NOW - 6 * DAY, NOW - 8 * DAY]
    assert next_allowed_at(FrequencyLimits(per_week=2), sent, NOW) == NOW - 6 * DAY + WEEK
    assert next_allowed_at(FrequencyLimits(per_week=3), sent, NOW) is None


def test_both_limits_take_the_later_time():
    sent = [NOW - 10, NOW - 2 * DAY]
    limits = FrequencyLimits(per_day=1, per_week=2)
    assert next_allowed_at(limits, sent, NOW) == NOW - 2 * DAY + WEEK


def test_token_bucket_allows_a_burst_then_spaces_sends():
    bucket = TokenBucket(rate=10, burst=2)
    waits = [bucket.reserve(0.0) for _ in range(4)]
    assert waits[:2] == [0.0, 0.0]
    assert [round(w, 3) for w in waits[2:]] == [0.1, 0.2]
    # A second later the debt is paid and a token saved.
    assert bucket.reserve(1.0) == 0.0


def test_token_bucket_with_no_rate_never_waits():
    bucket = TokenBucket(rate=0, burst=1)
    assert all(bucket.reserve(0.0) == 0.0 for _ in range(100))


def test_schedule_sends_a_burst_now_then_spaces_the_rest_at_the_rate():
    slots, tat = schedule(None, rate=10, now=NOW, count=15, burst_seconds=1.0)
    assert slots[:10] == [NOW] * 10
    assert [round(s - NOW, 3) for s in slots[10:]] == [0.1, 0.2, 0.3, 0.4, 0.5]
    assert round(tat - NOW, 3) == 1.5


def test_schedule_continues_after_earlier_reservations():
    _, tat = schedule(None, rate=10, now=NOW, count=15, burst_seconds=1.0)
    slots, _ = schedule(tat, rate=10, now=NOW, count=2, burst_seconds=1.0)
    assert [round(s - NOW, 3) for s in slots] == [0.6, 0.7]


def test_schedule_forgets_unused_capacity_beyond_the_burst():
    _, tat = schedule(None, rate=10, now=NOW, count=5, burst_seconds=1.0)
    slots, _ = schedule(tat, rate=10, now=NOW + 60, count=12, burst_seconds=1.0)
    # A minute idle saves one second's burst, not sixty.
    assert slots.count(NOW + 60) == 10 and min(slots[10:]) > NOW + 60


def test_schedule_never_exceeds_the_rate_over_any_window():
    rate, now, slots = 50.0, NOW, []
    tat = None
    for step in range(40):
        now = NOW + step * 0.13
        batch, tat = schedule(tat, rate, now, 17)
        slots.extend(batch)
    slots.sort()
    for i, start in enumerate(slots):
        in_window = sum(1 for s in slots[i:] if s < start + 1.0)
        assert in_window <= rate * (1.0 + 0.1) + 1
