"""A token bucket for the relay's sending rate: pure arithmetic on a clock the caller reads."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class TokenBucket:
    """`rate` tokens per second, at most `burst` saved up. Reservations may run into debt,
    so concurrent senders queue behind each other instead of all waking at once."""

    rate: float
    burst: float
    tokens: float = 0.0
    updated: float | None = None

    def reserve(self, now: float) -> float:
        """Take one token; return how many seconds the caller must wait before using it."""
        if self.rate <= 0:
            return 0.0
        if self.updated is None:
            self.tokens, self.updated = self.burst, now
        elapsed = max(0.0, now - self.updated)
        self.tokens = min(self.burst, self.tokens + elapsed * self.rate)
        self.updated = now
        self.tokens -= 1.0
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate


def schedule(
    tat: float | None, rate: float, now: float, count: int, *, burst_seconds: float = 0.1
) -> tuple[list[float], float]:
    """Send times for `count` messages held to `rate` per second, and the new arrival time.

    GCRA (the generic cell rate algorithm): `tat` is when the next message would be due if
    they went out exactly at the rate; up to `burst_seconds` of rate (at least one message)
    may go at once, so any window of `w` seconds holds at most `rate * (w + burst_seconds) + 1`. Every
    time returned is at or after `now`; the caller sends those at `now` and reserves the rest.
    """
    interval = 1.0 / rate
    tolerance = max(0.0, burst_seconds - interval)
    arrival = now if tat is None else tat
    slots: list[float] = []
    for _ in range(count):
        slot = max(now, arrival - tolerance)
        slots.append(slot)
        arrival = max(arrival, slot) + interval
    return slots, arrival
