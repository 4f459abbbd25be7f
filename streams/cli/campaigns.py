"""`nudge campaigns check DIR`: validate campaigns, segments and templates before deploying them."""

from __future__ import annotations

from pathlib import Path

import click

from agents.render.errors import TemplateFileError
from agents.render.template_files import parse_template
from agents.person.campaign_files import read_campaign_dir


def _check_templates(folder: Path) -> tuple[set[str], list[str]]:
    """Template ids in `folder` and one line per template that cannot load or compile."""
    ids: set[str] = set()
    problems: list[str] = []
    for path in sorted(folder.glob("*.html")):
        ids.add(path.stem)
        try:
            source = path.read_text(encoding="utf-8")
            text_path = path.with_suffix(".txt")
            text = text_path.read_text(encoding="utf-8") if text_path.exists() else None
            parse_template(path.stem, source, text, where=str(path))
        except TemplateFileError as exc:
            problems.append(str(exc))
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(f"{path}: cannot read: {exc}")
    return ids, problems


@click.group()
def campaigns() -> None:
    """Campaigns as code: check a folder of campaigns, segments and templates."""


@campaigns.command()
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
def check(directory: Path) -> None:
    """Validate DIRECTORY/campaigns/*.yaml, DIRECTORY/segments/*.yaml and DIRECTORY/templates/."""
    template_ids: set[str] | None = None
    problems: list[str] = []
    templates_dir = directory / "templates"
    if templates_dir.is_dir():
        template_ids, problems = _check_templates(templates_dir)
    result = read_campaign_dir(directory, template_ids)
    problems = result.problems + problems
    for line in problems:
        click.echo(line, err=True)
    summary = (
        f"{len(result.campaigns)} campaign(s), {len(result.segments)} segment(s)"
        + (f", {len(template_ids)} template(s)" if template_ids is not None else "")
    )
    if problems:
        click.echo(f"{len(problems)} problem(s) in {directory} ({summary} valid)", err=True)
        raise SystemExit(1)
    click.echo(f"ok: {summary} in {directory}")
