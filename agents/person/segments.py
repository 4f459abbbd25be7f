"""Segment membership: re-evaluated when an input touches what a segment reads, or at its flip time."""

from __future__ import annotations

from agents.person.conditions import Scope, evaluate
from agents.person.decision import Decision

# A segment entering or leaving can change segments that read it; this many passes at most.
_PASSES = 8


def update_segments(d: Decision, t: float) -> list[str]:
    """Bring memberships up to date at `t`; return the segments just entered, in definition order.

    Evaluates only the segments that read something this decision touched (all of them when
    `d.touched` is None) and those whose flip time has come, then the segments that read a
    segment whose membership changed. Each segment's next flip time goes to `segment_flips`.
    """
    state, campaigns = d.state, d.campaigns
    defined = campaigns.segments
    if not defined and not state.segments:
        return []
    if d.touched is None:
        for segment_id in [s for s in state.segments if s not in defined]:
            del state.segments[segment_id]
        for segment_id in [s for s in state.segment_flips if s not in defined]:
            del state.segment_flips[segment_id]
        candidates = [s for s, definition in defined.items() if definition.when is not None]
    else:
        due = {s for s, flip in state.segment_flips.items() if flip <= t}
        reading = campaigns.segments_reading(d.touched) if d.touched else []
        if not reading and not due:
            return []
        wanted = set(reading) | due
        candidates = [s for s in defined if s in wanted]
    entered: list[str] = []
    for _ in range(_PASSES):
        moved: list[str] = []
        for segment_id in candidates:
            when = defined[segment_id].when
            if when is None:
                continue  # a manual segment: only SegmentMembership inputs change it
            verdict = evaluate(when, Scope(state, t))
            if verdict.flip is not None and verdict.flip > t:
                state.segment_flips[segment_id] = verdict.flip
            else:
                state.segment_flips.pop(segment_id, None)
            if verdict.holds and segment_id not in state.segments:
                state.segments[segment_id] = t
                entered.append(segment_id)
                moved.append(segment_id)
            elif not verdict.holds and segment_id in state.segments:
                del state.segments[segment_id]
                moved.append(segment_id)
        if not moved:
            break
        for segment_id in moved:
            d.touch("segment", segment_id)
        candidates = campaigns.segments_reading(("segment", s) for s in moved)
    return entered
