"""The timer index finds who is due without scanning people, and forgets moved timers."""

from agents.person.timer_index import TimerIndex


def test_pop_due_returns_the_people_whose_earliest_timer_is_due():
    index = TimerIndex()
    index.set_person("ana", {"t1": 10.0, "t2": 30.0}, 1)
    index.set_person("bo", {"t3": 20.0}, 2)
    assert index.pop_due(20.0) == [("ana", 10.0, 1), ("bo", 20.0, 2)]


def test_moved_timer_fires_at_its_new_time_only():
    index = TimerIndex()
    index.set_person("ana", {"t1": 10.0})
    index.set_person("ana", {"t1": 50.0})
    assert index.pop_due(20.0) == []
    assert index.pop_due(50.0) == [("ana", 50.0, -1)]


def test_removed_timers_never_fire():
    index = TimerIndex()
    index.set_person("ana", {"t1": 10.0})
    index.set_person("ana", {})
    assert index.pop_due(100.0) == []
    assert len(index) == 0


def test_a_popped_person_is_not_resent_on_every_tick():
    index = TimerIndex(resend_after=30.0)
    index.set_person("ana", {"t1": 10.0})
    assert index.pop_due(10.0) == [("ana", 10.0, -1)]
    index.set_person("ana", {"t1": 10.0})  # the agent re-reports before the wake lands
    assert index.pop_due(20.0) == []


def test_a_lost_wake_is_resent_after_the_grace_period():
    index = TimerIndex(resend_after=30.0)
    index.set_person("ana", {"t1": 10.0})
    index.pop_due(10.0)
    assert index.pop_due(40.0) == [("ana", 10.0, -1)]


def test_a_wake_kafka_refused_is_due_again_at_once():
    index = TimerIndex(resend_after=30.0)
    index.set_person("ana", {"t1": 10.0}, 3)
    index.pop_due(10.0)
    index.retry("ana", 10.0, 3)
    assert index.pop_due(11.0) == [("ana", 10.0, 3)]


def test_rebuild_replaces_everything_known():
    index = TimerIndex()
    index.set_person("gone", {"t0": 1.0})
    index.rebuild([("ana", {"t1": 5.0}), ("bo", {})], partition=0)
    assert index.pop_due(10.0) == [("ana", 5.0, 0)]
    assert len(index) == 1
