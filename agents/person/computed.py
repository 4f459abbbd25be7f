"""Computed attributes: count, sum, min, max or last of an event property, kept per track.

Kept incrementally in `state.computed` (never recomputed from the bounded history, which forgets)
and mirrored into `state.attributes`, so conditions and templates read them as `customer.<id>`.
"""

from __future__ import annotations

from typing import Any

from agents.person.decision import Decision
from agents.person.where import lookup, matches_where
from schemas.campaigns import ComputedAttribute
from schemas.person import ComputedValue, Event


def _number(value: Any) -> float | int | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                return None
        return None
    return value


def step(attribute: ComputedAttribute, current: ComputedValue | None, event: Event) -> ComputedValue | None:
    """The attribute's value after `event` (which matched its event name and `where`).

    None means the event doesn't move it (its property is missing or not a number).
    """
    if attribute.aggregate == "count":
        return ComputedValue(value=(current.value if current else 0) + 1, at=event.at)
    assert attribute.property is not None
    present, raw = lookup(event.data, attribute.property)
    if not present or raw is None:
        return None
    if attribute.aggregate == "last":
        if current is not None and current.at > event.at:
            return None  # an older event arriving late doesn't replace a newer value
        return ComputedValue(value=raw, at=event.at)
    number = _number(raw)
    if number is None:
        return None
    if current is None:
        return ComputedValue(value=number, at=event.at)
    if attribute.aggregate == "sum":
        return ComputedValue(value=current.value + number, at=max(current.at, event.at))
    better = number < current.value if attribute.aggregate == "min" else number > current.value
    return ComputedValue(value=number, at=event.at) if better else None


def combine(attribute: ComputedAttribute, a: ComputedValue | None, b: ComputedValue | None) -> ComputedValue | None:
    """Two people's running values as one (a merge): sums and counts add, min/max/last pick."""
    if a is None or b is None:
        return a or b
    if attribute.aggregate in ("count", "sum"):
        return ComputedValue(value=a.value + b.value, at=max(a.at, b.at))
    if attribute.aggregate == "last":
        return a if a.at >= b.at else b
    pick_a = (a.value <= b.value) if attribute.aggregate == "min" else (a.value >= b.value)
    return a if pick_a else b


def apply_event(d: Decision, event: Event) -> dict[str, tuple[object, object]]:
    """Move every computed attribute this event feeds; return the attributes changed (old, new)."""
    changed: dict[str, tuple[object, object]] = {}
    for attribute in d.campaigns.computed_by_event.get(event.name, ()):
        if not matches_where(event.data, attribute.where):
            continue
        new = step(attribute, d.state.computed.get(attribute.id), event)
        if new is not None:
            d.state.computed[attribute.id] = new
            changed.update(mirror(d, attribute.id))
    return changed


def mirror(d: Decision, attribute_id: str) -> dict[str, tuple[object, object]]:
    """Copy one computed value into the attributes; return the change, if any."""
    value = d.state.computed[attribute_id].value
    old = d.state.attributes.get(attribute_id)
    if old == value:
        return {}
    d.state.attributes[attribute_id] = value
    d.touch("attribute", attribute_id)
    return {attribute_id: (old, value)}
