"""Write one batch of projection messages to PostgreSQL without ever stalling on a bad row.

The batch goes in one transaction. When PostgreSQL refuses something in it (a NUL character
in text or jsonb, a value past a limit, a broken constraint), the batch is split in halves,
each written in its own transaction, until the refused command stands alone: it is returned as
a `Refusal` for the dead-letter topic and everything else is written. Trouble that is not the
data's fault (PostgreSQL down or restarting, a missing table) is retried, with backoff, until
it clears: the caller acknowledges its Kafka messages only once this returns, so nothing is
lost and nothing is skipped.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import asyncpg

from agents.projector.plan import Projection, Refusal, decode_message, plan_batch
from agents.projector.store import write_segments
from streams.retry import Sleep, retry

log = logging.getLogger(__name__)

# SQLSTATE classes that blame the data: 22 data exception (bad characters, out of range),
# 23 integrity constraint violation, 54 program limit exceeded (an index row too large).
_DATA_CLASSES = ("22", "23", "54")

_FIRST_RETRY_SECONDS = 0.5
_MAX_RETRY_SECONDS = 10.0

T = TypeVar("T")
PoolFactory = Callable[[], Awaitable[asyncpg.Pool]]


def refused_by_data(exc: BaseException) -> bool:
    """Whether PostgreSQL (or asyncpg, encoding a parameter) refused the rows themselves."""
    if isinstance(exc, asyncpg.PostgresError):
        return (exc.sqlstate or "")[:2] in _DATA_CLASSES
    # asyncpg's client-side DataError (a parameter it cannot encode) and UnicodeEncodeError
    # (a lone surrogate) are ValueErrors; connection trouble never is.
    return isinstance(exc, ValueError)


async def write_projections(pool: asyncpg.Pool, projections: list[Projection]) -> list[Refusal]:
    """Write `projections`; return those refused (by encoding or by PostgreSQL), written or not."""
    segments, refusals = plan_batch(projections)
    if refusals:
        refused = {(r.source, r.index) for r in refusals}
        projections = [p for p in projections if (p.source, p.index) not in refused]
        segments, _ = plan_batch(projections)
    return refusals + await _write_or_split(pool, projections, segments)


async def _write_or_split(
    pool: asyncpg.Pool, projections: list[Projection], segments: list | None = None
) -> list[Refusal]:
    if not projections:
        return []
    if segments is None:
        segments, _ = plan_batch(projections)
    try:
        async with pool.acquire() as conn, conn.transaction():
            await write_segments(conn, segments)
        return []
    except Exception as exc:
        if not refused_by_data(exc):
            raise
        if len(projections) == 1:
            [alone] = projections
            return [Refusal(
                f"PostgreSQL refused it: {type(exc).__name__}: {exc}", alone.source,
                alone.text(), alone.command.person, alone.index,
            )]
    middle = len(projections) // 2
    return (
        await _write_or_split(pool, projections[:middle])
        + await _write_or_split(pool, projections[middle:])
    )


async def until_done(action: Callable[[], Awaitable[T]], what: str, *, sleep: Sleep = asyncio.sleep) -> T:
    """Run `action` until it succeeds, waiting longer after each failure (0.5 s doubling to 10 s):
    for trouble that is not the data's fault (PostgreSQL or Kafka down), which must be waited out,
    never skipped."""
    # Anything that reaches here is waited out (cancellation is not an Exception).
    return await retry(action, f"projector: {what}", first=_FIRST_RETRY_SECONDS, cap=_MAX_RETRY_SECONDS,
                       sleep=sleep, log=log, level=logging.ERROR)


@dataclass(frozen=True)
class BatchOutcome:
    """What became of a batch: the commands written, by kind, and the refusals to dead-letter."""

    written: Counter[str]
    refusals: list[Refusal]


async def project_messages(
    get_pool: PoolFactory,
    messages: list[tuple[str, bytes | None]],
    *,
    sleep: Sleep = asyncio.sleep,
) -> BatchOutcome:
    """Decode and write (source, value) Kafka messages; retry until PostgreSQL takes them.

    Returns only once every command not refused is durable in PostgreSQL.
    """
    projections: list[Projection] = []
    refusals: list[Refusal] = []
    for source, value in messages:
        decoded, refused = decode_message(value, source)
        projections += decoded
        refusals += refused

    async def write() -> list[Refusal]:
        return refusals + await write_projections(await get_pool(), projections)

    refused = await until_done(write, f"writing {len(projections)} commands", sleep=sleep)
    dropped = {(r.source, r.index) for r in refused}
    written: Counter[str] = Counter(p.command.kind for p in projections if (p.source, p.index) not in dropped)
    return BatchOutcome(written, refused)
