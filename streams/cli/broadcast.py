"""`nudge broadcast CAMPAIGN --segment ID`: send a campaign once to everyone in a segment."""

from __future__ import annotations

import asyncio
import time

import asyncpg
import click

from agents.broadcast.plan import BroadcastError, plan_broadcast
from agents.broadcast.publish import start_scan
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
@click.option("--rate", type=float, default=None, help="Sends per second in all, held at delivery across every worker (default: no limit).")
@click.option("--wait/--no-wait", default=True, show_default=True, help="Show delivery progress until done.")
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
        await start_scan(pool, settings, starts)
        click.echo(f"broadcast {starts[0].id} started: about {members} people in {segment}")
        if wait:
            await _follow(pool, starts[0].id, members)
    finally:
        await pool.close()


# Polls with nothing left to send (scan done, every queued message sent or failed) before
# the broadcast counts as delivered: the person agent may still be deciding the last inputs.
_SETTLED_POLLS = 4


async def _follow(pool: asyncpg.Pool, scan_id: str, expected: int) -> BroadcastStatus | None:
    """Show delivery progress (queued, sent, failed) until the broadcast has settled."""
    status = None
    began = time.monotonic()
    settled = 0
    with click.progressbar(length=max(expected, 1), label="sent or failed") as bar:
        shown = 0
        while settled < _SETTLED_POLLS:
            await asyncio.sleep(0.5)
            status = await scan_status(pool, scan_id)
            if status is None:
                continue
            finished = status.sent + status.failed
            bar.update(min(finished, expected) - shown)
            shown = min(finished, expected)
            settled = settled + 1 if status.done and finished == status.queued else 0
    if status is not None:
        scanned = sum(p.scanned for p in status.partitions)
        click.echo(
            f"done: {scanned} people scanned, {status.queued} queued, {status.sent} sent, "
            f"{status.failed} failed, {time.monotonic() - began:.1f}s"
        )
    return status
