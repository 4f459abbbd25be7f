"""Time windows: the next instant at or after `t` that falls inside a days-and-hours window."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from schemas.campaigns import TimeWindowSpec

_DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@lru_cache(maxsize=512)
def _zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        return None


def resolve_zone(name: object, fallback: str) -> ZoneInfo:
    """The person's IANA zone, or `fallback` when it is missing or unknown."""
    zone = _zone(name) if isinstance(name, str) and name else None
    return zone or _zone(fallback) or ZoneInfo("UTC")


def _at(day: date, minutes: int, zone: ZoneInfo) -> float:
    """Unix seconds of a wall-clock time on `day` in `zone` (24:00 is the next midnight)."""
    extra, minutes = divmod(minutes, 24 * 60)
    day = day + timedelta(days=extra)
    hour, minute = divmod(minutes, 60)
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone).timestamp()


def next_open(window: TimeWindowSpec, zone: ZoneInfo, t: float) -> float:
    """`t` itself when inside the window, else the next opening.

    A window whose `to` is not after its `from` runs overnight into the next day; `days` name
    the day it opens on.
    """
    start, end = window.minutes()
    if end <= start:
        end += 24 * 60
    today = datetime.fromtimestamp(t, zone).date()
    # Yesterday first: an overnight window that opened then may still be open.
    for offset in range(-1, 9):
        day = today + timedelta(days=offset)
        if _DAY_NAMES[day.weekday()] not in window.days:
            continue
        opens, closes = _at(day, start, zone), _at(day, end, zone)
        if opens <= t < closes:
            return t
        if opens > t:
            return opens
    return t
