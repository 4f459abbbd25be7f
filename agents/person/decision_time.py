"""When a decision happens: the `now` the shell passes to `decide`. Pure.

An input is decided at its own time (`at`: when the API accepted it, or a timer's due time),
not at the moment a worker happens to read it. That makes a replayed input decide exactly as
it did the first time (same journey ids, same message ids: the outbox drops the copy), makes
production agree with `nudge simulate`, and means "since entry" counts an event that arrived
right after the trigger even when both were read in one batch. Two bounds keep client clocks
honest: an input older than MAX_INPUT_LAG (a backfill, a long outage) is decided that long
ago at most, so a week-old event cannot fire a week of waits at once; nothing is decided in
the future or before the person's previous decision.
"""

from __future__ import annotations

MAX_INPUT_LAG = 300.0


def decision_time(at: float, previous: float | None, wall: float) -> float:
    """The input's own time, within [wall - MAX_INPUT_LAG, wall], never before `previous`."""
    now = min(wall, max(at, wall - MAX_INPUT_LAG))
    return now if previous is None else max(now, previous)
