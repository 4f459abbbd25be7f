"""`nudge preview TEMPLATE`: render a template for a real person's full state (or given values)."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import click
from pydantic import TypeAdapter, ValidationError

from agents.render.email import render_email
from agents.render.errors import TemplateRenderError
from agents.simulate.preview import PreviewError, preview_context, rebuild
from agents.simulate.project import Project, ProjectError, load_project
from schemas.commands import RenderContext
from schemas.inputs import Input
from streams.settings import Settings

_INPUT: TypeAdapter[Input] = TypeAdapter(Input)


def _json_object(value: str | None, option: str) -> dict[str, Any] | None:
    if value is None:
        return None
    try:
        data = json.loads(value)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not valid JSON: {exc}", param_hint=option) from exc
    if not isinstance(data, dict):
        raise click.BadParameter("must be a JSON object", param_hint=option)
    return data


async def _recorded(settings: Settings, person: str) -> tuple[list[Input], dict[str, Any] | None]:
    """The person's recorded inputs, oldest first (merges carry what was folded into them),
    and their profile's attributes (for when nothing was recorded)."""
    from agents.projector import queries
    from agents.sender.people import PeopleTableMissing, person_profile
    from streams.database import cli_pool, close_pool

    pool = await cli_pool(settings)
    rows: list[dict[str, Any]] = []
    try:
        try:
            profile = await person_profile(pool, person)
        except PeopleTableMissing:
            profile = None
        after = 0
        try:
            while page := await queries.recorded_inputs(pool, person=person, after=after):
                rows += [raw for _, raw in page]
                after = page[-1][0]
        except queries.RecordedInputsMissing:
            rows = []
    finally:
        await close_pool()
    inputs = []
    for raw in rows:
        try:
            inputs.append(_INPUT.validate_python(raw))
        except ValidationError:
            continue  # recorded by an older version: left out
    return inputs, (profile.attributes if profile is not None else None)


@click.command()
@click.argument("template")
@click.option("--person", help="Render for this person: their attributes, computed attributes and "
              "history, rebuilt from the inputs the live stack recorded for them.")
@click.option("--journey", help="With --person: use this journey's trigger event (a journey id, or a "
              "campaign id for their latest journey in it).")
@click.option("--event", "event", help="The trigger event: with --person, the name of their latest "
              "event to use; without, its properties as a JSON object.")
@click.option("--data", help="Trigger event properties as a JSON object (over those of --event).")
@click.option("--attributes", help="Customer attributes as a JSON object (with --person: over theirs).")
@click.option("--campaigns", "folder", type=click.Path(file_okay=False, path_type=Path),
              help="The project folder (default NUDGE_CAMPAIGNS_DIR).")
@click.option("--part", type=click.Choice(["all", "subject", "html", "text"]), default="all")
def preview(
    template: str, person: str | None, journey: str | None, event: str | None, data: str | None,
    attributes: str | None, folder: Path | None, part: str,
) -> None:
    """Render TEMPLATE (a file stem in templates/) and print subject, HTML and text, with the
    context the delivery loop builds."""
    settings = Settings.from_env()
    root = folder or settings.campaigns_dir
    if journey and not person:
        raise click.UsageError("--journey needs --person")
    try:
        project = load_project(root) if (root / "campaigns").is_dir() else _templates_only(root)
    except ProjectError as exc:
        raise click.ClickException(f"cannot load {root}:\n" + "\n".join(f"  {p}" for p in exc.problems)) from exc
    if template not in project.templates:
        known = ", ".join(sorted(project.templates)) or "none"
        raise click.ClickException(f"no template {template!r} in {root}/templates (known: {known})")
    extra = _json_object(attributes, "--attributes")
    given = _json_object(data, "--data")
    to = None
    if person:
        context, to = _person_context(settings, project, person, journey, event, given, extra)
    else:
        trigger = _json_object(event, "--event") or {}
        context = RenderContext(customer=extra or {}, event={**trigger, **(given or {})})
    try:
        rendered = render_email(
            project.templates[template], context,
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


def _templates_only(root: Path) -> Project:
    from agents.render.errors import TemplateFileError
    from agents.render.template_files import load_templates

    try:
        return Project(root=root, templates=load_templates(root / "templates"))
    except TemplateFileError as exc:
        raise ProjectError(root, [str(exc)]) from exc


def _person_context(
    settings: Settings, project: Project, person: str, journey: str | None, event: str | None,
    data: dict[str, Any] | None, extra: dict[str, Any] | None,
) -> tuple[RenderContext, str | None]:
    inputs, profile = asyncio.run(_recorded(settings, person))
    if not inputs:
        if profile is None:
            raise click.ClickException(f"no person {person!r}: nothing recorded for them and no profile")
        if journey or event:
            raise click.ClickException(
                f"nothing recorded for {person!r} (their inputs are kept from `nudge migrate` on), "
                "so their journeys and events are unknown; give the event with --data"
            )
        click.echo(f"note: nothing recorded for {person!r}: rendering with their profile's attributes only", err=True)
        return RenderContext(customer={**profile, **(extra or {})}, event=data or {}), None
    rebuilt = rebuild(person, inputs, project, time.time())
    try:
        context = preview_context(rebuilt, journey=journey, event=event, data=data, attributes=extra)
    except PreviewError as exc:
        raise click.ClickException(str(exc)) from exc
    assert rebuilt.state is not None
    return context, rebuilt.state.email
