"""`nudge gdpr export ID` and `nudge gdpr delete ID`: a person's data for an access request, and
erasure on request, for operators (the API's `DELETE /api/v1/customers/{id}` does the same)."""

from __future__ import annotations

import asyncio
import json
import time

import click

from streams.settings import Settings

# How long `delete` waits, by default, for the read side to show the erasure.
WAIT_SECONDS = 60.0


@click.group()
def gdpr() -> None:
    """Export or erase what Nudge holds on one person."""


async def _export(settings: Settings, person: str) -> dict:
    from agents.projector.export import export_person
    from streams.database import cli_pool, close_pool

    pool = await cli_pool(settings)
    try:
        return await export_person(pool, person)
    finally:
        await close_pool()


@gdpr.command("export")
@click.argument("person")
def export(person: str) -> None:
    """Print, as JSON, every row PostgreSQL holds on PERSON: profile, segments, activity (with the
    inputs), journeys and steps, messages (with what they were rendered from), their timelines,
    subscription choices and the suppressions of their addresses."""
    found = asyncio.run(_export(Settings.from_env(), person))
    if not found["tables"]:
        raise click.ClickException(f"nothing is stored on {person!r} (deployment {Settings.from_env().app_id})")
    click.echo(json.dumps(found, indent=2, ensure_ascii=False))


async def _delete(settings: Settings, person: str, wait: float) -> bool:
    from schemas.inputs import Delete
    from streams.database import cli_pool, close_pool
    from streams.http.publisher import InputPublisher

    publisher = InputPublisher(settings.kafka_bootstrap, settings.input_topic, settings.partitions)
    await publisher.start()
    try:
        await publisher.publish([Delete(person=person, at=time.time())])
    finally:
        await publisher.stop()
    if wait <= 0:
        return True
    pool = await cli_pool(settings)
    try:
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not await pool.fetchval(
                "SELECT EXISTS (SELECT 1 FROM people WHERE person = $1)"
                " OR EXISTS (SELECT 1 FROM activity WHERE person = $1)",
                person,
            ):
                return True
            await asyncio.sleep(0.5)
        return False
    finally:
        await close_pool()


@gdpr.command("delete")
@click.argument("person")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option(
    "--wait", type=float, default=WAIT_SECONDS, show_default=True,
    help="Seconds to wait for PostgreSQL to show the erasure (0: do not wait).",
)
def delete(person: str, yes: bool, wait: float) -> None:
    """Erase PERSON: publishes a delete input, which the worker applies in order with their other
    inputs (state, journeys and timers dropped; PostgreSQL rows erased or anonymised)."""
    settings = Settings.from_env()
    if not yes:
        click.confirm(f"Erase {person!r} from deployment {settings.app_id}? This cannot be undone", abort=True)
    if asyncio.run(_delete(settings, person, wait)):
        click.echo(f"{person} erased" if wait > 0 else f"deletion of {person} requested")
    else:
        raise click.ClickException(
            f"deletion of {person} requested, but PostgreSQL still holds their rows after {wait:.0f} s:"
            " is a worker running (`nudge worker`)?"
        )
