"""The per-person marketing frequency limit: pure arithmetic over recent send times."""

from __future__ import annotations

from dataclasses import dataclass

DAY = 86_400.0
WEEK = 7 * DAY


@dataclass(frozen=True)
class FrequencyLimits:
    """At most `per_day` marketing emails in any 24 h and `per_week` in any 7 days; 0 = no limit."""

    per_day: int = 0
    per_week: int = 0

    @property
    def active(self) -> bool:
        return self.per_day > 0 or self.per_week > 0

    @property
    def longest_window(self) -> float:
        return WEEK if self.per_week > 0 else DAY


def _window_opens_at(sent: list[float], now: float, window: float, limit: int) -> float | None:
    recent = sorted((t for t in sent if now - window < t <= now), reverse=True)
    if limit <= 0 or len(recent) < limit:
        return None
    # The limit-th most recent send must leave the window before another may go.
    return recent[limit - 1] + window


def next_allowed_at(limits: FrequencyLimits, sent: list[float], now: float) -> float | None:
    """None when one more marketing email may go now; else the earliest time it may."""
    opens = [
        at
        for at in (
            _window_opens_at(sent, now, DAY, limits.per_day),
            _window_opens_at(sent, now, WEEK, limits.per_week),
        )
        if at is not None
    ]
    return max(opens) if opens else None
