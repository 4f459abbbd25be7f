"""`nudge events`: the event catalog, every event and property seen, with JSON types and counts."""

from __future__ import annotations

import asyncio
import json

import click

from schemas.read_side import CatalogEvent
from streams.cli.tables import format_table, iso
from streams.settings import Settings

HEADERS = ("EVENT", "PROPERTY", "TYPE", "COUNT", "FIRST SEEN", "LAST SEEN")


def catalog_rows(events: list[CatalogEvent]) -> list[tuple[str, ...]]:
    """One row per event (its type: event, page or screen), then one per property (its JSON types)."""
    rows: list[tuple[str, ...]] = []
    for event in events:
        name = event.event if event.type == "event" else f"{event.event} ({event.type})"
        rows.append((name, "", event.type, str(event.count), iso(event.first_seen), iso(event.last_seen)))
        for prop in event.properties:
            rows.append(
                ("", prop.name, "|".join(prop.types), str(prop.count), iso(prop.first_seen), iso(prop.last_seen))
            )
    return rows


async def _catalog(settings: Settings) -> list[CatalogEvent]:
    from agents.projector import queries
    from streams.database import cli_pool, close_pool

    pool = await cli_pool(settings)
    try:
        return await queries.event_catalog(pool)
    finally:
        await close_pool()


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the API's JSON (GET /api/v1/events).")
def events(as_json: bool) -> None:
    """Every event seen, its properties and their JSON types, counts and first/last seen."""
    catalog = asyncio.run(_catalog(Settings.from_env()))
    if as_json:
        click.echo(json.dumps({"events": [e.model_dump(mode="json") for e in catalog]}, indent=2))
        return
    if not catalog:
        click.echo("no events yet: track one (POST /api/v1/customers/{id}/events) and run a worker")
        return
    for line in format_table(HEADERS, catalog_rows(catalog)):
        click.echo(line)
