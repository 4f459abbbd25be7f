"""Retrying, one way: `retry` runs an async action again after each failure, waiting longer.

Used for trouble that is not the data's fault and passes (PostgreSQL or Kafka down, a webhook
endpoint away): bounded (`attempts`) where giving up is safe, forever where the work must be
waited out, never skipped. The waits double from `first` up to `cap`; `jitter` (a function
returning [0, 1)) spreads a burst of retries over the upper half of each wait.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]

_log = logging.getLogger(__name__)


def backoff(attempt: int, *, first: float, cap: float, jitter: float | None = None) -> float:
    """The wait after failed attempt `attempt` (1-based): `first` doubling, at most `cap`; with
    `jitter` in [0, 1), a point in the upper half of that wait."""
    nominal = min(cap, first * 2 ** max(0, attempt - 1))
    return nominal if jitter is None else nominal * (0.5 + jitter / 2)


async def retry(
    action: Callable[[], Awaitable[T]],
    what: str,
    *,
    on: type[BaseException] | tuple[type[BaseException], ...] = Exception,
    attempts: int | None = None,
    first: float = 0.5,
    cap: float = 10.0,
    jitter: Callable[[], float] | None = None,
    sleep: Sleep = asyncio.sleep,
    log: logging.Logger = _log,
    level: int = logging.WARNING,
) -> T:
    """`await action()` until it returns; after `attempts` failures (None: never) re-raise the last.

    Only exceptions of `on` are retried (anything else, and cancellation, goes straight up);
    each failure is logged on `log` at `level`, naming `what` and the wait.
    """
    attempt = 0
    while True:
        try:
            return await action()
        except on as exc:
            attempt += 1
            if attempts is not None and attempt >= attempts:
                raise
            delay = backoff(attempt, first=first, cap=cap, jitter=jitter() if jitter else None)
            log.log(level, "%s failed (attempt %d%s, %s: %s); retrying in %.1f s", what, attempt,
                    f" of {attempts}" if attempts else "", type(exc).__name__, exc, delay)
            await sleep(delay)
