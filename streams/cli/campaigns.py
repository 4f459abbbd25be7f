"""`nudge campaigns check [DIR]`: a project folder checked before it goes live."""

from __future__ import annotations

import time
from pathlib import Path

import click

from agents.check.folder import read_folder
from agents.check.history import history_notes
from agents.check.report import check_folder
from streams.settings import Settings


@click.group()
def campaigns() -> None:
    """Campaigns as code: check a project folder of campaigns, segments and templates."""


@campaigns.command()
@click.argument("directory", required=False, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--strict", is_flag=True, help="Warnings fail the check too.")
@click.option("--quiet", "-q", is_flag=True, help="Print problems only, not what each condition sees of the past.")
def check(directory: Path | None, strict: bool, quiet: bool) -> None:
    """Check DIRECTORY (default NUDGE_CAMPAIGNS_DIR): campaigns/, segments/, computed/,
    templates/ and events.yaml, each problem with its file, line and fix.

    Templates are rendered for a synthetic person built from every attribute and event the
    definitions and events.yaml mention. It also says what each event condition sees of the
    past when first loaded. Exits 1 on errors (and on warnings with --strict).
    """
    root = directory or Settings.from_env().campaigns_dir
    report = check_folder(read_folder(root), time.time())
    for problem in sorted(report.problems, key=lambda p: (p.severity != "error", p.file, p.line or 0)):
        click.echo(str(problem), err=True)
    found = report.definitions
    notes = history_notes(found)
    if notes and not quiet:
        click.echo("what each event condition sees of the past when first loaded:")
        for line in notes:
            click.echo(f"  {line}")
    summary = (
        f"{len(found.campaigns)} campaign(s), {len(found.segments)} segment(s), "
        f"{len(found.computed)} computed attribute(s) valid, {report.templates} template(s) checked"
    )
    errors, warnings = len(report.errors), len(report.warnings)
    if errors or (strict and warnings):
        click.echo(f"{errors} error(s), {warnings} warning(s) in {root} ({summary})", err=True)
        raise SystemExit(1)
    click.echo(f"ok: {summary} in {root}" + (f"; {warnings} warning(s)" if warnings else ""))
