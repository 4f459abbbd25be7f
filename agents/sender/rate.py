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
