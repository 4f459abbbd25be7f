"""`nudge preview TEMPLATE`: render a template for a real person (or given attributes)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import click

from agents.render.email import render_email
from agents.render.errors import TemplateFileError, TemplateRenderError
from agents.render.template_files import load_templates
from schemas.commands import RenderContext
from streams.settings import Settings


def _json_object(value: str | None, option: str) -> dict[str, Any]:
    if value is None:
        return {}
    try:
        data = json.loads(value)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not valid JSON: {exc}", param_hint=option) from exc
    if not isinstance(data, dict):
        raise click.BadParameter("must be a JSON object", param_hint=option)
    return data


async def _attributes_of(settings: Settings, person: str) -> tuple[dict[str, Any], str | None]:
    from agents.sender.people import PeopleTableMissing, person_profile
    from streams.database import cli_pool, close_pool

    pool = await cli_pool(settings)
    try:
        profile = await person_profile(pool, person)
    except PeopleTableMissing as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        await close_pool()
    if profile is None:
        raise click.ClickException(f"no person {person!r} in the people projection")
    return profile.attributes, profile.email


@click.command()
@click.argument("template")
@click.option("--person", help="Render with this person's attributes from PostgreSQL (`people`).")
@click.option("--attributes", help="Customer attributes as a JSON object (instead of --person).")
@click.option("--event", "event_json", help="Trigger event properties as a JSON object.")
@click.option("--dir", "directory", type=click.Path(path_type=Path),
              help="The templates folder (default: NUDGE_CAMPAIGNS_DIR/templates).")
@click.option("--part", type=click.Choice(["all", "subject", "html", "text"]), default="all")
def preview(
    template: str, person: str | None, attributes: str | None, event_json: str | None,
    directory: Path | None, part: str,
) -> None:
    """Render TEMPLATE (a file stem in templates/) and print subject, HTML and text."""
    settings = Settings.from_env()
    if person and attributes:
        raise click.UsageError("give --person or --attributes, not both")
    try:
        templates = load_templates(directory or settings.templates_dir)
    except TemplateFileError as exc:
        raise click.ClickException(str(exc)) from exc
    if template not in templates:
        known = ", ".join(sorted(templates)) or "none"
        raise click.ClickException(f"no template {template!r} (known: {known})")
    customer = _json_object(attributes, "--attributes")
    to = None
    if person:
        customer, to = asyncio.run(_attributes_of(settings, person))
    context = RenderContext(customer=customer, event=_json_object(event_json, "--event"))
    try:
        rendered = render_email(
            templates[template], context,
            unsubscribe_url=f"{settings.public_url.rstrip('/')}/unsubscribe/PREVIEW",
            preferences_url=f"{settings.public_url.rstrip('/')}/preferences/PREVIEW",
        )
    except TemplateRenderError as exc:
        raise click.ClickException(str(exc)) from exc
    if part == "subject":
        click.echo(rendered.subject)
    elif part == "html":
        click.echo(rendered.html)
    elif part == "text":
        click.echo(rendered.text)
    else:
        if to:
            click.echo(f"To: {to}")
        click.echo(f"Subject: {rendered.subject}\n\n--- html ---\n{rendered.html}\n\n--- text ---\n{rendered.text}")
