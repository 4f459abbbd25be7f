"""`nudge activity`: the latest inputs and what each changed; `--follow` prints new ones as they
arrive; `--export` writes the recorded inputs as a replayable JSON Lines file."""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import IO

import click
import orjson

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


def _moment(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(f"{value!r} is neither Unix seconds nor an ISO 8601 time") from None
    if moment.tzinfo is None:
        raise click.BadParameter(f"{value!r} has no time zone (add Z for UTC)")
    return moment.timestamp()


async def _export(
    settings: Settings, person: str | None, since: float | None, until: float | None, out: IO[bytes]
) -> int:
    """Write every recorded input, oldest first, one JSON object per line; return how many."""
    from agents.projector import queries
    from streams.database import cli_pool, close_pool

    pool = await cli_pool(settings)
    written, after = 0, 0
    try:
        while True:
            try:
                page = await queries.recorded_inputs(pool, after=after, person=person, since=since, until=until)
            except queries.RecordedInputsMissing as exc:
                raise click.ClickException(str(exc)) from exc
            if not page:
                return written
            out.write(b"".join(orjson.dumps(item) + b"\n" for _, item in page))
            written += len(page)
            after = page[-1][0]
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
@click.option("--export", is_flag=True,
              help="Write the recorded inputs, oldest first, as JSON Lines in the input topic's format "
                   "(replay them with `nudge simulate --events FILE`); engine-made wakes and merges are left out.")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path),
              help="With --export: the file to write (default: standard output).")
@click.option("--since", callback=_moment, help="With --export: inputs applied at or after this time (ISO 8601 or Unix seconds).")
@click.option("--until", callback=_moment, help="With --export: inputs applied before this time.")
def activity(
    person: str | None, kind: str | None, limit: int, follow: bool, interval: float, as_json: bool,
    export: bool, output: Path | None, since: float | None, until: float | None,
) -> None:
    """The latest inputs (events, attribute changes, ...) and what each changed, from PostgreSQL."""
    settings = Settings.from_env()
    if export:
        if follow or kind or as_json:
            raise click.UsageError("--export goes with --person, --since, --until and --output only")
        if output is None:
            written = asyncio.run(_export(settings, person, since, until, sys.stdout.buffer))
        else:
            with output.open("wb") as out:
                written = asyncio.run(_export(settings, person, since, until, out))
        click.echo(f"exported {written} input(s)" + (f" to {output}" if output else ""), err=True)
        return
    if since is not None or until is not None or output is not None:
        raise click.UsageError("--since, --until and --output go with --export")
    try:
        asyncio.run(_show(settings, person, kind, limit, follow, as_json, interval))
    except KeyboardInterrupt:
        pass  # Ctrl-C is how --follow ends
