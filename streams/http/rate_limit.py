"""Back-pressure: a token bucket per key; a request beyond it gets 429 with Retry-After."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from streams.http.errors import ApiError

# Past this many keys (client addresses), buckets that have refilled are forgotten.
MAX_KEYS = 10_000


class RateLimiter:
    """`rate` requests per second per key, with a burst of one second's worth (at least one)."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._rate = rate
        self._burst = max(rate, 1.0)
        self._clock = clock
        # key -> (tokens, when they were counted)
        self._buckets: dict[str, tuple[float, float]] = {}

    def take(self, key: str, per: str = "per credential") -> None:
        """Spend one token of `key`'s bucket, or raise a 429 ApiError saying when to retry."""
        if self._rate <= 0:
            return  # a rate of 0 switches the limit off
        now = self._clock()
        if key not in self._buckets and len(self._buckets) >= MAX_KEYS:
            self._forget_full(now)
        tokens, then = self._buckets.get(key, (self._burst, now))
        tokens = min(self._burst, tokens + (now - then) * self._rate)
        if tokens < 1.0:
            self._buckets[key] = (tokens, now)
            wait = (1.0 - tokens) / self._rate
            raise ApiError(
                429,
                f"rate limit exceeded: at most {self._rate:g} requests per second {per}",
                {"Retry-After": str(max(1, math.ceil(wait)))},
            )
        self._buckets[key] = (tokens - 1.0, now)

    def _forget_full(self, now: float) -> None:
        # A bucket idle long enough to be full again carries no information.
        refill = self._burst / self._rate
        self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < refill}
