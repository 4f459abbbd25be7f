"""`nudge broadcast CAMPAIGN --segment ID`: send a campaign once to everyone in a segment."""

from __future__ import annotations

import asyncio
import time

import asyncpg
import click

from agents.broadcast.plan import BroadcastError, plan_broadcast
from agents.broadcast.publish import scans_topic, start_scan
from agents.broadcast.store import count_members, scan_status
from agents.person.campaign_files import load_definitions
from schemas.broadcasts import BroadcastStatus
from schemas.campaigns import CampaignFileError
from streams.database import create_pool
from streams.settings import Settings


@click.command()
@click.argument("campaign")
@click.option("--segment", required=True, help="The segment whose members get the campaign.")
@click.option("--dry-run", is_flag=True, help="Only count the segment's members (from PostgreSQL).")
@click.option("--rate", type=float, default=None, help="Sends per second in all (default: no limit).")
@click.option("--wait/--no-wait", default=True, show_default=True, help="Show progress until done.")
def broadcast(campaign: str, segment: str, dry_run: bool, rate: float | None, wait: bool) -> None:
    """Send CAMPAIGN (a single `send` step) once to every member of --segment, fanned out per partition."""
    settings = Settings.from_env()
    try:
        found = load_definitions(settings.campaigns_dir)
    except CampaignFileError as exc:
        raise click.ClickException(str(exc)) from exc
    chosen = next((c for c in found.campaigns if c.id == campaign), None)
    if chosen is None:
        raise click.ClickException(f"no campaign {campaign!r} in {settings.campaigns_dir}/campaigns")
    if segment not in {s.id for s in found.segments}:
        raise click.ClickException(f"no segment {segment!r} in {settings.campaigns_dir}/segments")
    try:
        starts = plan_broadcast(chosen, segment, settings.partitions, rate=rate)
    except BroadcastError as exc:
        raise click.ClickException(str(exc)) from exc
    asyncio.run(_run(settings, starts, segment, dry_run, wait))


async def _run(settings: Settings, starts: list, segment: str, dry_run: bool, wait: bool) -> None:
    pool = await create_pool(settings.database_url, settings.app_id, max_size=2)
    try:
        members = await count_members(pool, segment)
        if dry_run:
            click.echo(f"{members} people in segment {segment} would get {starts[0].template}")
            return
        await start_scan(pool, settings.kafka_bootstrap, scans_topic(settings.app_id), starts)
        click.echo(f"broadcast {starts[0].id} started: about {members} people in {segment}")
        if wait:
            await _follow(pool, starts[0].id, members)
    finally:
        await pool.close()


async def _follow(pool: asyncpg.Pool, scan_id: str, expected: int) -> BroadcastStatus | None:
    """Show a progress bar of sends enqueued until every partition is done."""
    status = None
    began = time.monotonic()
    with click.progressbar(length=max(expected, 1), label="enqueued") as bar:
        shown = 0
        while True:
            status = await scan_status(pool, scan_id)
            enqueued = sum(p.enqueued for p in status.partitions) if status else 0
            bar.update(min(enqueued, expected) - shown)
            shown = min(enqueued, expected)
            if status is not None and status.done:
                break
            await asyncio.sleep(0.5)
    if status is not None:
        elapsed = time.monotonic() - began
        enqueued = sum(p.enqueued for p in status.partitions)
        scanned = sum(p.scanned for p in status.partitions)
        click.echo(f"done: {enqueued} sends enqueued, {scanned} people scanned, {elapsed:.1f}s")
    return status
