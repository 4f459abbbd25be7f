"""Inputs are decided at their own time, within bounds that keep client clocks honest."""

from agents.person.decision_time import MAX_INPUT_LAG, decision_time

WALL = 1_800_000_000.0


def test_a_recent_input_is_decided_at_its_own_time():
    assert decision_time(WALL - 0.2, None, WALL) == WALL - 0.2


def test_the_same_input_read_later_is_decided_the_same():
    assert decision_time(WALL - 0.2, None, WALL) == decision_time(WALL - 0.2, None, WALL + 30)


def test_an_old_input_is_decided_no_earlier_than_the_lag_bound():
    assert decision_time(WALL - 7 * 86400, None, WALL) == WALL - MAX_INPUT_LAG


def test_a_future_input_is_decided_now():
    assert decision_time(WALL + 3600, None, WALL) == WALL


def test_a_decision_never_runs_before_the_previous_one():
    assert decision_time(WALL - 5, WALL - 1, WALL) == WALL - 1
