"""`nudge messages`: a message's status and timeline, and the suppression list."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import click

from streams.settings import Settings

T = TypeVar("T")


def _iso(t: float | None) -> str:
    if t is None:
        return "-"
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _with_pool(work: Callable[[Any], Awaitable[T]]) -> T:
    from streams.database import cli_pool, close_pool

    async def run() -> T:
        pool = await cli_pool(Settings.from_env())
        try:
            return await work(pool)
        finally:
            await close_pool()

    return asyncio.run(run())


@click.group()
def messages() -> None:
    """Inspect messages and manage the suppression list."""


@messages.command("show")
@click.argument("message_id")
@click.option("--json", "as_json", is_flag=True, help="Print the API's JSON.")
def show(message_id: str, as_json: bool) -> None:
    """A message's status and timeline."""
    from agents.sender.outbox import message_status
    from streams.http.email_links import message_json

    status = _with_pool(lambda pool: message_status(pool, message_id))
    if status is None:
        raise click.ClickException(f"no message {message_id!r} in the outbox")
    if as_json:
        click.echo(json.dumps(message_json(status), indent=2))
        return
    row = status.row
    click.echo(f"{row.message_id}  {row.status}  to {row.to_address}  template {row.template}"
               f"  attempts {row.attempts}")
    if row.last_error:
        click.echo(f"last error: {row.last_error}")
    for event in status.events:
        click.echo(f"  {_iso(event.at)}  {event.status:<13} {event.detail or ''}")


@messages.command("suppress")
@click.argument("address")
@click.option("--reason", default="manual", show_default=True)
def suppress(address: str, reason: str) -> None:
    """Never send to ADDRESS again (until unsuppressed)."""
    from agents.sender import suppression

    added = _with_pool(lambda pool: suppression.suppress(pool, address, reason))
    click.echo(f"suppressed {address}" if added else f"{address} was already suppressed")


@messages.command("unsuppress")
@click.argument("address")
def unsuppress(address: str) -> None:
    """Allow sending to ADDRESS again."""
    from agents.sender import suppression

    if not _with_pool(lambda pool: suppression.unsuppress(pool, address)):
        raise click.ClickException(f"{address} is not suppressed")
    click.echo(f"unsuppressed {address}")


@messages.command("suppressions")
def suppressions() -> None:
    """List suppressed addresses, newest first."""
    from agents.sender import suppression

    for entry in _with_pool(suppression.list_suppressions):
        click.echo(f"{_iso(entry.at)}  {entry.address:<40} {entry.reason}  {entry.detail or ''}")
