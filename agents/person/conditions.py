"""Evaluate conditions against a person at a moment, and say when the answer could next change.

`evaluate` returns a Verdict: whether the condition holds at `scope.now`, and the next instant
after it at which the answer could flip on time alone (None: only a new input can change it).
The engine sets a timer at that instant, so time-relative conditions stay exact without scans.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple

from agents.person.timestamps import to_unix
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
from schemas.history import EventRecord
from schemas.person import PersonState


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
        return _event(condition, scope)
    if isinstance(condition, InactivityCondition):
        return _inactivity(condition, scope)
    if isinstance(condition, SegmentCondition):
        return Verdict(condition.segment in scope.state.segments)
    if isinstance(condition, MessageCondition):
        return _message(condition, scope)
    raise TypeError(f"not a condition: {condition!r}")


def holds(condition: Condition | None, scope: Scope) -> bool:
    """`evaluate(...).holds`; a missing condition holds."""
    return condition is None or evaluate(condition, scope).holds


# --- values and `where` ------------------------------------------------------------------

_COMPARISONS = ("eq", "ne", "in", "exists", "gt", "gte", "lt", "lte", "contains")


def lookup(data: dict[str, Any], key: str) -> tuple[bool, Any]:
    """`data[key]`, following dots into nested mappings (`address.city`)."""
    if key in data:
        return True, data[key]
    current: Any = data
    for part in key.split("."):
        if not isinstance(current, dict) or part not in current:
            return False, None
        current = current[part]
    return True, current


def _ordered(left: Any, right: Any) -> tuple[float, float] | None:
    """Two values as comparable numbers: numbers as they are, else both as timestamps."""
    numbers = (int, float)
    if isinstance(left, numbers) and isinstance(right, numbers):
        if not isinstance(left, bool) and not isinstance(right, bool):
            return float(left), float(right)
    a, b = to_unix(left), to_unix(right)
    if a is None or b is None:
        return None
    return a, b


def compare(op: str, present: bool, value: Any, operand: Any) -> bool:
    """One comparison operator applied to a (possibly missing) value."""
    if op == "exists":
        return (present and value is not None) == bool(operand)
    if op == "ne":
        return not present or value != operand
    if not present:
        return False
    if op == "eq":
        return bool(value == operand)
    if op in ("in", "in_"):
        return value in (operand or [])
    if op == "contains":
        if isinstance(value, str):
            return isinstance(operand, str) and operand in value
        if isinstance(value, (list, tuple, dict)):
            return operand in value
        return False
    pair = _ordered(value, operand)
    if pair is None:
        return False
    left, right = pair
    return {
        "gt": left > right, "gte": left >= right, "lt": left < right, "lte": left <= right,
    }[op]


def matches_where(data: dict[str, Any], where: dict[str, Any]) -> bool:
    """Every `where` key matches: a plain value by equality, `{gt: 3}` and friends by operator."""
    for key, expected in where.items():
        present, value = lookup(data, key)
        if isinstance(expected, dict) and expected and set(expected) <= set(_COMPARISONS):
            if not all(compare(op, present, value, operand) for op, operand in expected.items()):
                return False
        elif not present or value != expected:
            return False
    return True


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


def _count_ok(count: int, spec: CountSpec | None) -> bool:
    if spec is None:
        return count >= 1
    checks = [
        (spec.eq, lambda b: count == b), (spec.gt, lambda b: count > b),
        (spec.gte, lambda b: count >= b), (spec.lt, lambda b: count < b),
        (spec.lte, lambda b: count <= b),
    ]
    return all(test(bound) for bound, test in checks if bound is not None)


def _matching(records: Iterable[EventRecord], name: str, where: dict[str, Any]) -> list[EventRecord]:
    return [r for r in records if r.name == name and matches_where(r.data, where)]


def _event(condition: EventCondition, scope: Scope) -> Verdict:
    history = scope.state.history
    # Events strictly after these instants count; the event that started a journey does not
    # count as happening "since entry".
    floors = [scope.events_after] + ([scope.entered_at] if condition.since == "entry" else [])
    floor = max((f for f in floors if f is not None), default=None)
    window_start = scope.now - condition.within if condition.within is not None else None
    if floor is None and window_start is None and not condition.where:
        aggregate = history.aggregates.get(condition.event)
        return Verdict(_count_ok(aggregate.count if aggregate else 0, condition.count))
    found = [
        r
        for r in _matching(history.recent, condition.event, condition.where)
        if r.at <= scope.now
        and (floor is None or r.at > floor)
        and (window_start is None or r.at > window_start)
    ]
    flip = None
    if condition.within is not None and found:
        # The answer can change when the oldest counted event leaves the window.
        flip = min(r.at for r in found) + condition.within
    return Verdict(_count_ok(len(found), condition.count), flip)


def _inactivity(condition: InactivityCondition, scope: Scope) -> Verdict:
    state = scope.state
    if condition.where:
        matching = _matching(state.history.recent, condition.not_performed, condition.where)
        last = max((r.at for r in matching if r.at <= scope.now), default=None)
    else:
        aggregate = state.history.aggregates.get(condition.not_performed)
        last = aggregate.last_at if aggregate else None
    # A person who appeared a minute ago is not "quiet for a week".
    anchor = max(m for m in (last, state.first_seen, scope.events_after) if m is not None)
    quiet_from = anchor + condition.for_
    return Verdict(scope.now >= quiet_from, quiet_from if quiet_from > scope.now else None)


# --- messages ----------------------------------------------------------------------------


def _message(condition: MessageCondition, scope: Scope) -> Verdict:
    floor = scope.entered_at if condition.since == "entry" else None
    flags = condition.flags()
    for record in scope.state.messages:
        if record.template != condition.message:
            continue
        if floor is not None and record.at < floor:
            continue
        if all((status in record.statuses) == wanted for status, wanted in flags.items()):
            return Verdict(True)
    return Verdict(False)
