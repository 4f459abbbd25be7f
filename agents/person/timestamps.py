"""Timestamp attributes: Unix seconds or ISO 8601 strings, both read as Unix seconds."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def to_unix(value: Any) -> float | None:
    """Unix seconds for a number, a numeric string or an ISO 8601 string; None otherwise.

    A naive ISO time is taken as UTC.
    """
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        text = value.strip()
        try:
            return float(text)
        except ValueError:
            pass
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            return None
    else:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def iso(t: float) -> str:
    """`t` as ISO 8601 UTC, for reasons people read."""
    return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")
