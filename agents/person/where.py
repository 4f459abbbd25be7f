"""Values and `where`: reading a (dotted) key, comparing with an operator, matching properties.

Pure. Shared by conditions, triggers, computed attributes and the event indexes.
"""

from __future__ import annotations

from typing import Any

from agents.person.timestamps import to_unix

COMPARISONS = ("eq", "ne", "in", "exists", "gt", "gte", "lt", "lte", "contains")


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
        if isinstance(expected, dict) and expected and set(expected) <= set(COMPARISONS):
            if not all(compare(op, present, value, operand) for op, operand in expected.items()):
                return False
        elif not present or value != expected:
            return False
    return True
