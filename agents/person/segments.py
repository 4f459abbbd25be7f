"""Segment membership: re-evaluated on every input and at every flip time."""

from __future__ import annotations

from agents.person.conditions import Scope, evaluate
from agents.person.decision import Decision


def update_segments(d: Decision, t: float) -> list[str]:
    """Bring memberships up to date at `t`; return the segments just entered, in definition order.

    Also records each segment's next flip time in `d.segment_flips` for the timers.
    """
    state = d.state
    entered: list[str] = []
    d.segment_flips = {}
    for segment_id in list(state.segments):
        if segment_id not in d.campaigns.segments:
            del state.segments[segment_id]
    for segment_id, segment in d.campaigns.segments.items():
        if segment.when is None:
            continue  # a manual segment: only SegmentMembership inputs change it
        verdict = evaluate(segment.when, Scope(state, t))
        if verdict.flip is not None and verdict.flip > t:
            d.segment_flips[segment_id] = verdict.flip
        if verdict.holds and segment_id not in state.segments:
            state.segments[segment_id] = t
            entered.append(segment_id)
        elif not verdict.holds and segment_id in state.segments:
            del state.segments[segment_id]
    return entered
