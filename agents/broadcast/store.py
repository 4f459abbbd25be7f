"""Scan bookkeeping in PostgreSQL: scans, per-partition progress, segment definition versions."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from schemas.broadcasts import BroadcastStatus, ScanProgress, ScanStart


@dataclass
class PartitionProgress:
    """Where a partition's scan stands: a restarted scan resumes after `last_key`."""

    scanned: int = 0
    enqueued: int = 0
    done: bool = False
    last_key: str | None = None


async def create_scan(pool: asyncpg.Pool, starts: list[ScanStart]) -> None:
    """Record a scan and a zero progress row per partition (idempotent)."""
    first = starts[0]
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            """INSERT INTO broadcasts (id, kind, campaign, template, segment, partitions, rate, reason)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (id) DO NOTHING""",
            first.id, first.kind, first.campaign, first.template, first.segment, len(starts),
            sum(s.rate for s in starts if s.rate) or None, first.reason,
        )
        await conn.executemany(
            """INSERT INTO broadcast_progress (broadcast, partition) VALUES ($1, $2)
               ON CONFLICT DO NOTHING""",
            [(s.id, s.partition) for s in starts],
        )


async def load_progress(pool: asyncpg.Pool, scan_id: str, partition: int) -> PartitionProgress:
    """The partition's progress so far (zero if none recorded)."""
    row = await pool.fetchrow(
        """SELECT scanned, enqueued, done, last_key FROM broadcast_progress
           WHERE broadcast = $1 AND partition = $2""",
        scan_id, partition,
    )
    if row is None:
        return PartitionProgress()
    return PartitionProgress(row["scanned"], row["enqueued"], row["done"], row["last_key"])


async def save_progress(pool: asyncpg.Pool, scan_id: str, partition: int, progress: PartitionProgress) -> None:
    """Record the partition's progress (only after what it counts has been flushed to Kafka)."""
    await pool.execute(
        """INSERT INTO broadcast_progress (broadcast, partition, scanned, enqueued, done, last_key, updated_at)
           VALUES ($1, $2, $3, $4, $5, $6, now())
           ON CONFLICT (broadcast, partition) DO UPDATE SET scanned = EXCLUDED.scanned,
               enqueued = EXCLUDED.enqueued, done = EXCLUDED.done, last_key = EXCLUDED.last_key,
               updated_at = now()""",
        scan_id, partition, progress.scanned, progress.enqueued, progress.done, progress.last_key,
    )


async def scan_status(pool: asyncpg.Pool, scan_id: str) -> BroadcastStatus | None:
    """A scan and its progress per partition, or None if unknown."""
    head = await pool.fetchrow(
        "SELECT id, kind, campaign, template, segment, rate FROM broadcasts WHERE id = $1", scan_id
    )
    if head is None:
        return None
    counts = await pool.fetchrow(
        "SELECT queued, sent, failed FROM broadcast_counts WHERE broadcast = $1", scan_id
    )
    rows = await pool.fetch(
        """SELECT partition, scanned, enqueued, done FROM broadcast_progress
           WHERE broadcast = $1 ORDER BY partition""",
        scan_id,
    )
    return BroadcastStatus(
        **dict(head), partitions=[ScanProgress(**dict(r)) for r in rows],
        **(dict(counts) if counts is not None else {}),
    )


async def count_members(pool: asyncpg.Pool, segment: str) -> int:
    """How many people are in the segment now, as the projector last recorded."""
    return await pool.fetchval("SELECT count(*) FROM segment_members WHERE segment = $1", segment)


async def record_definitions(pool: asyncpg.Pool, definitions: dict[str, str], backfill: str) -> list[str]:
    """Remember segment definitions (id -> canonical JSON); return the ids seen for the first time."""
    rows = await pool.fetch(
        """INSERT INTO segment_definitions (segment, definition, backfill)
           SELECT * FROM unnest($1::text[], $2::text[], $3::text[])
           ON CONFLICT DO NOTHING RETURNING segment""",
        list(definitions), list(definitions.values()), [backfill] * len(definitions),
    )
    return [r["segment"] for r in rows]
