"""Rate limits, all in one place: pure arithmetic on a clock the caller reads or passes in.

- `TokenBucket`: `rate` tokens per second, at most `burst` saved up. The relay's sending rate
  reserves into debt (concurrent senders queue behind each other); a request either takes a
  token or learns how long to wait, spending nothing.
- `RateLimiter`: one bucket per key (a credential, a client address), with bounded memory: the
  HTTP edge's 429s.
- `schedule`: GCRA send times for a batch held to a rate (a broadcast's `--rate`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

# Past this many keys (client addresses), buckets that have refilled are forgotten.
MAX_KEYS = 10_000


@dataclass
class TokenBucket:
    """`rate` tokens per second, at most `burst` saved up; starts full. A rate of 0 is no limit."""

    rate: float
    burst: float
    tokens: float = 0.0
    updated: float | None = None

    def _refill(self, now: float) -> None:
        if self.updated is None:
            self.tokens, self.updated = self.burst, now
        elapsed = max(0.0, now - self.updated)
        self.tokens = min(self.burst, self.tokens + elapsed * self.rate)
        self.updated = now

    def reserve(self, now: float) -> float:
        """Take one token, into debt if need be; return how many seconds to wait before using it."""
        if self.rate <= 0:
            return 0.0
        self._refill(now)
        self.tokens -= 1.0
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate

    def try_take(self, now: float) -> float:
        """Take one token if there is one (return 0.0); else spend nothing, return the wait."""
        if self.rate <= 0:
            return 0.0
        self._refill(now)
        if self.tokens < 1.0:
            return (1.0 - self.tokens) / self.rate
        self.tokens -= 1.0
        return 0.0

    def full_at(self) -> float:
        """When this bucket will be full again (it then carries no information)."""
        missing = self.burst - self.tokens
        return (self.updated or 0.0) + (missing / self.rate if self.rate > 0 else 0.0)


class RateLimiter:
    """`rate` per second per key, with a burst of one second's worth (at least one)."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self._burst = max(rate, 1.0)
        self._clock = clock
        self._buckets: dict[str, TokenBucket] = {}

    def take(self, key: str) -> float:
        """Spend one of `key`'s tokens (return 0.0), or return the seconds until one is back."""
        if self.rate <= 0:
            return 0.0  # a rate of 0 switches the limit off
        now = self._clock()
        if key not in self._buckets and len(self._buckets) >= MAX_KEYS:
            self._buckets = {k: b for k, b in self._buckets.items() if b.full_at() > now}
        bucket = self._buckets.setdefault(key, TokenBucket(self.rate, self._burst))
        return bucket.try_take(now)

    def __len__(self) -> int:
        return len(self._buckets)


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
