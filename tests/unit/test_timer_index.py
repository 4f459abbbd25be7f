"""The timer index finds what is due without scanning people, and forgets moved timers."""

from agents.person.timer_index import TimerIndex


def test_pop_due_returns_only_timers_at_or_before_now():
    index = TimerIndex()
    index.set_person("ana", {"t1": 10.0, "t2": 30.0})
    index.set_person("bo", {"t3": 20.0})
    assert index.pop_due(20.0) == [("ana", "t1", 10.0), ("bo", "t3", 20.0)]


def test_moved_timer_fires_at_its_new_time_only():
    index = TimerIndex()
    index.set_person("ana", {"t1": 10.0})
    index.set_person("ana", {"t1": 50.0})
    assert index.pop_due(20.0) == []
    assert index.pop_due(50.0) == [("ana", "t1", 50.0)]


def test_removed_timer_never_fires():
    index = TimerIndex()
    index.set_person("ana", {"t1": 10.0})
    index.set_person("ana", {})
    assert index.pop_due(100.0) == []
    assert len(index) == 0


def test_popped_timer_is_not_resent_on_every_tick():
    index = TimerIndex(resend_after=30.0)
    index.set_person("ana", {"t1": 10.0})
    assert index.pop_due(10.0) == [("ana", "t1", 10.0)]
    index.set_person("ana", {"t1": 10.0})  # the agent re-reports before the wake lands
    assert index.pop_due(20.0) == []


def test_lost_wake_is_resent_after_the_grace_period():
    index = TimerIndex(resend_after=30.0)
    index.set_person("ana", {"t1": 10.0})
    index.pop_due(10.0)
    assert index.pop_due(40.0) == [("ana", "t1", 10.0)]


def test_rebuild_replaces_everything_known():
    index = TimerIndex()
    index.set_person("gone", {"t0": 1.0})
    index.rebuild([("ana", {"t1": 5.0}), ("bo", {})])
    assert index.pop_due(10.0) == [("ana", "t1", 5.0)]
