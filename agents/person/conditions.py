"""Evaluate conditions against a person at a moment, and say when the answer could next change.

`evaluate` returns a Verdict: whether the condition holds at `scope.now`, and the next instant
after it at which the answer could flip on time alone (None: only a new input can change it).
The engine sets a timer at that instant, so time-relative conditions stay exact without scans.
Event conditions read the person's lifetime totals and exact match indexes
(agents/person/event_index.py), never the bounded recent history. `explain` gives the values a
condition saw, for the provenance of branches and exits.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

from agents.person.event_index import match_key
from agents.person.timestamps import to_unix
from agents.person.where import compare, lookup
from schemas.campaigns import (
    AllCondition,
    AnyCondition,
    AttributeCondition,
    Condition,
    CountSpec,
    EventCondition,
    InactivityCondition,
    MessageCondition,
    NotCondition,
    SegmentCondition,
)
from schemas.person import MatchIndex, PersonState


class Verdict(NamedTuple):
    """`holds` now; `flip` is the next instant it could change without any input."""

    holds: bool
    flip: float | None = None


@dataclass(frozen=True)
class Scope:
    """What a condition is evaluated against.

    `entered_at` gives `since: entry` its meaning; `events_after` (exit and goal) makes every
    event condition count only events after that instant.
    """

    state: PersonState
    now: float
    entered_at: float | None = None
    events_after: float | None = None


def earliest(*moments: float | None) -> float | None:
    """The earliest of the given instants, ignoring None."""
    known = [m for m in moments if m is not None]
    return min(known) if known else None


def evaluate(condition: Condition, scope: Scope) -> Verdict:
    """Whether `condition` holds for the person at `scope.now`, and its next flip time."""
    if isinstance(condition, AllCondition):
        verdicts = [evaluate(c, scope) for c in condition.all]
        return Verdict(all(v.holds for v in verdicts), earliest(*(v.flip for v in verdicts)))
    if isinstance(condition, AnyCondition):
        verdicts = [evaluate(c, scope) for c in condition.any]
        return Verdict(any(v.holds for v in verdicts), earliest(*(v.flip for v in verdicts)))
    if isinstance(condition, NotCondition):
        inner = evaluate(condition.not_, scope)
        return Verdict(not inner.holds, inner.flip)
    if isinstance(condition, AttributeCondition):
        return _attribute(condition, scope)
    if isinstance(condition, EventCondition):
        return _event(condition, scope)[0]
    if isinstance(condition, InactivityCondition):
        return _inactivity(condition, scope)[0]
    if isinstance(condition, SegmentCondition):
        return Verdict(condition.segment in scope.state.segments)
    if isinstance(condition, MessageCondition):
        return Verdict(_message(condition, scope))
    raise TypeError(f"not a condition: {condition!r}")


def holds(condition: Condition | None, scope: Scope) -> bool:
    """`evaluate(...).holds`; a missing condition holds."""
    return condition is None or evaluate(condition, scope).holds


def explain(condition: Condition, scope: Scope) -> dict[str, Any]:
    """The condition's answer and the values it saw: `{"holds": ..., ...}`, nested for all/any/not."""
    if isinstance(condition, (AllCondition, AnyCondition)):
        children = condition.all if isinstance(condition, AllCondition) else condition.any
        kind = "all" if isinstance(condition, AllCondition) else "any"
        return {"holds": evaluate(condition, scope).holds, kind: [explain(c, scope) for c in children]}
    if isinstance(condition, NotCondition):
        return {"holds": evaluate(condition, scope).holds, "not": explain(condition.not_, scope)}
    seen: dict[str, Any]
    if isinstance(condition, AttributeCondition):
        present, value = lookup(scope.state.attributes, condition.attribute)
        seen = {"attribute": condition.attribute, "value": value if present else None, "present": present}
    elif isinstance(condition, EventCondition):
        _, count = _event(condition, scope)
        seen = {"event": condition.event, "count": count}
        if condition.since:
            seen["since"] = condition.since
        if condition.within is not None:
            seen["within_seconds"] = condition.within
    elif isinstance(condition, InactivityCondition):
        _, last = _inactivity(condition, scope)
        seen = {"not_performed": condition.not_performed, "last_at": last}
    elif isinstance(condition, SegmentCondition):
        seen = {"segment": condition.segment, "member": condition.segment in scope.state.segments}
    elif isinstance(condition, MessageCondition):
        seen = {"message": condition.message, **condition.flags()}
    else:  # pragma: no cover - the condition union is closed
        raise TypeError(f"not a condition: {condition!r}")
    return {"holds": evaluate(condition, scope).holds, **seen}


# --- attributes --------------------------------------------------------------------------


def _attribute(condition: AttributeCondition, scope: Scope) -> Verdict:
    present, value = lookup(scope.state.attributes, condition.attribute)
    now = scope.now
    result, flips = True, []
    for op, operand in condition.operators():
        if op in ("older_than", "within_last", "within_next"):
            moment = to_unix(value) if present else None
            if moment is None:
                result = False
                continue
            ok, flip = _relative(op, moment, float(operand), now)
            result = result and ok
            flips.append(flip)
        else:
            result = result and compare(op, present, value, operand)
    return Verdict(result, earliest(*flips))


def _relative(op: str, moment: float, span: float, now: float) -> tuple[bool, float | None]:
    """One time-relative operator: whether it holds at `now`, and when it next could flip."""
    def after(t: float) -> float | None:
        return t if t > now else None

    if op == "older_than":
        # Holds from moment + span on.
        return now >= moment + span, after(moment + span)
    if op == "within_last":
        # Holds from the moment until span after it.
        return moment <= now < moment + span, earliest(after(moment), after(moment + span))
    # within_next: holds from span before the moment until the moment.
    return moment - span <= now < moment, earliest(after(moment - span), after(moment))


# --- events ------------------------------------------------------------------------------


def count_ok(count: int, spec: CountSpec | None) -> bool:
    """Whether `count` events satisfy a count spec (none: at least one)."""
    if spec is None:
        return count >= 1
    checks: list[tuple[float | None, Callable[[float], bool]]] = [
        (spec.eq, lambda b: count == b), (spec.gt, lambda b: count > b),
        (spec.gte, lambda b: count >= b), (spec.lt, lambda b: count < b),
        (spec.lte, lambda b: count <= b),
    ]
    return all(test(bound) for bound, test in checks if bound is not None)


def _index(state: PersonState, event: str, where: dict[str, Any]) -> MatchIndex | None:
    return state.matches.get(match_key(event, where))


def _event(condition: EventCondition, scope: Scope) -> tuple[Verdict, int]:
    """The verdict and the number of events counted."""
    state = scope.state
    # Events strictly after these instants count; the event that started a journey does not
    # count as happening "since entry".
    floors = [scope.events_after] + ([scope.entered_at] if condition.since == "entry" else [])
    floor = max((f for f in floors if f is not None), default=None)
    window_start = scope.now - condition.within if condition.within is not None else None
    lower = max((b for b in (floor, window_start) if b is not None), default=None)
    if lower is None:
        if condition.where:
            index = _index(state, condition.event, condition.where)
            count = index.count if index else 0
        else:
            totals = state.totals.get(condition.event)
            count = totals.count if totals else 0
        return Verdict(count_ok(count, condition.count)), count
    index = _index(state, condition.event, condition.where)
    times = index.times if index else []
    counted = [t for t in times if lower < t <= scope.now]
    flips: list[float | None] = []
    if condition.within is not None and counted:
        # The answer can change when the oldest counted event leaves the window.
        flips.append(counted[0] + condition.within)
    # An event stamped after `now` (a client clock ahead) counts once its time has come.
    flips.append(next((t for t in times if t > scope.now), None))
    count = len(counted)
    return Verdict(count_ok(count, condition.count), earliest(*flips)), count


def _inactivity(condition: InactivityCondition, scope: Scope) -> tuple[Verdict, float | None]:
    """The verdict and the time of the last matching event (None: never)."""
    state = scope.state
    if condition.where:
        index = _index(state, condition.not_performed, condition.where)
        past = [t for t in (index.times if index else []) if t <= scope.now]
        last = past[-1] if past else None
    else:
        totals = state.totals.get(condition.not_performed)
        last = totals.last_at if totals else None
    # A person who appeared a minute ago is not "quiet for a week".
    anchor = max(m for m in (last, state.first_seen, scope.events_after) if m is not None)
    quiet_from = anchor + condition.for_
    verdict = Verdict(scope.now >= quiet_from, quiet_from if quiet_from > scope.now else None)
    return verdict, last


# --- messages ----------------------------------------------------------------------------


def _message(condition: MessageCondition, scope: Scope) -> bool:
    floor = scope.entered_at if condition.since == "entry" else None
    flags = condition.flags()
    for record in scope.state.messages:
        if record.template != condition.message:
            continue
        if floor is not None and record.at < floor:
            continue
        if all((status in record.statuses) == wanted for status, wanted in flags.items()):
            return True
    return False
