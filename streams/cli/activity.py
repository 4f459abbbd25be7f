"""`nudge activity`: the latest inputs and what each changed; `--follow` prints new ones as they arrive."""

from __future__ import annotations

import asyncio
import json

import click

from schemas.read_side import ActivityEntry
from streams.cli.tables import iso
from streams.settings import Settings

HEADER = f"{'ID':>8}  {'AT':<20}  {'PERSON':<20}  {'KIND':<18}  SUMMARY"


def activity_line(entry: ActivityEntry) -> str:
    """One input as a table row: id, time, person, kind and the summary of what it changed."""
    return f"{entry.id:>8}  {iso(entry.at):<20}  {entry.person:<20}  {entry.kind:<18}  {entry.summary}"


def _emit(entries: list[ActivityEntry], as_json: bool) -> None:
    for entry in entries:
        click.echo(json.dumps(entry.model_dump(mode="json")) if as_json else activity_line(entry))


async def _show(
    settings: Settings, person: str | None, kind: str | None, limit: int, follow: bool,
    as_json: bool, interval: float,
) -> None:
    from agents.projector import queries
    from streams.database import cli_pool, close_pool

    pool = await cli_pool(settings)
    try:
        latest = await queries.recent_activity(pool, person=person, kind=kind, limit=limit)
        if as_json and not follow:
            # The API's order and shape: newest first.
            click.echo(json.dumps([e.model_dump(mode="json") for e in latest], indent=2))
            return
        if not as_json:
            click.echo(HEADER)
        # Oldest first, like a log: the newest input ends up last, next to what follows.
        _emit(list(reversed(latest)), as_json)
        if not follow:
            return
        last = latest[0].id if latest else 0
        while True:
            await asyncio.sleep(interval)
            new = await queries.activity_after(pool, last, person=person, kind=kind)
            _emit(new, as_json)
            if new:
                last = new[-1].id
    finally:
        await close_pool()


@click.command()
@click.option("--person", help="Only this person's inputs.")
@click.option("--kind", help="Only inputs of this kind (identify, track, delivery, ...).")
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True,
              help="How many of the latest inputs to show.")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new inputs as they arrive (Ctrl-C stops).")
@click.option("--interval", type=click.FloatRange(0.05, 60), default=1.0, show_default=True,
              help="Seconds between polls with --follow.")
@click.option("--json", "as_json", is_flag=True,
              help="JSON: an array, newest first; with --follow, one object per line.")
def activity(
    person: str | None, kind: str | None, limit: int, follow: bool, interval: float, as_json: bool
) -> None:
    """The latest inputs (events, attribute changes, ...) and what each changed, from PostgreSQL."""
    try:
        asyncio.run(_show(Settings.from_env(), person, kind, limit, follow, as_json, interval))
    except KeyboardInterrupt:
        pass  # Ctrl-C is how --follow ends
