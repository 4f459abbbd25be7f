"""`nudge segments`: segment sizes and re-evaluation backfills."""

from __future__ import annotations

import asyncio

import click

from agents.broadcast.plan import plan_reevaluation
from agents.broadcast.publish import start_scan
from agents.broadcast.store import scan_status
from streams.database import connect, create_pool
from streams.settings import Settings


@click.group()
def segments() -> None:
    """Segment sizes and backfills."""


@segments.command("sizes")
def sizes() -> None:
    """How many people are in each segment now (from PostgreSQL)."""
    settings = Settings.from_env()

    async def run() -> None:
        conn = await connect(settings.database_url, settings.app_id)
        try:
            rows = await conn.fetch(
                "SELECT segment, count(*) AS n, min(entered_at) AS since FROM segment_members"
                " GROUP BY segment ORDER BY segment"
            )
        finally:
            await conn.close()
        for row in rows:
            click.echo(f"{row['segment']:<30} {row['n']:>10}  since {row['since']:%Y-%m-%d %H:%M}")

    asyncio.run(run())


@segments.command("backfill")
@click.option("--reason", default="manual backfill", show_default=True)
@click.option("--rate", type=float, default=None, help="Re-evaluations per second in all.")
@click.option("--wait/--no-wait", default=True, show_default=True)
def backfill(reason: str, rate: float | None, wait: bool) -> None:
    """Ask every person to re-evaluate their segments now (workers also do this on their own when
    a segment definition is new or edited)."""
    settings = Settings.from_env()
    starts = plan_reevaluation(settings.partitions, reason=reason, rate=rate)

    async def run() -> None:
        pool = await create_pool(settings.database_url, settings.app_id, max_size=2)
        try:
            await start_scan(pool, settings, starts)
            click.echo(f"backfill {starts[0].id} started")
            while wait:
                status = await scan_status(pool, starts[0].id)
                if status is not None and status.done:
                    done = sum(p.enqueued for p in status.partitions)
                    click.echo(f"done: {done} people asked to re-evaluate")
                    return
                await asyncio.sleep(0.5)
        finally:
            await pool.close()

    asyncio.run(run())
