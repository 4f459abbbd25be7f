"""Durations as the campaign language writes them: integers with units s m h d w, concatenated."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer

from schemas.errors import InputError

_UNITS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}
_PART = re.compile(r"(\d+)([wdhms])")
_WHOLE = re.compile(r"-?(?:\d+[wdhms])+")


class DurationError(InputError):
    """A duration that is not integers with units s m h d w (e.g. `48h`, `11d4h48m`)."""


def parse_duration(value: Any) -> float:
    """Seconds in `value`: a string like `48h1m` or `-3d`, or a plain number of seconds."""
    if isinstance(value, bool):
        raise DurationError(f"{value!r} is not a duration (use s m h d w, e.g. 48h)")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        text = value.strip().replace(" ", "")
        if text and _WHOLE.fullmatch(text):
            sign = -1.0 if text.startswith("-") else 1.0
            return sign * sum(int(n) * _UNITS[unit] for n, unit in _PART.findall(text))
    raise DurationError(f"{value!r} is not a duration (use s m h d w, e.g. 48h)")


def format_duration(seconds: float) -> str:
    """The shortest `1d2h3m4s` spelling of `seconds` (`0s` for zero; fractions are dropped)."""
    whole = round(seconds)
    sign, whole = ("-", -whole) if whole < 0 else ("", whole)
    parts = []
    for unit in ("d", "h", "m", "s"):
        count, whole = divmod(whole, _UNITS[unit])
        if count:
            parts.append(f"{count}{unit}")
    return sign + ("".join(parts) or "0s")


def _validate(value: Any) -> float:
    # Pydantic reports a ValueError's message; DurationError already reads well on its own.
    return parse_duration(value)


Duration = Annotated[
    float,
    BeforeValidator(_validate),
    PlainSerializer(format_duration, return_type=str),
]
"""A duration field: accepts `48h` or seconds, holds seconds, serializes back as `2d`."""
