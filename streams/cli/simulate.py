"""`nudge simulate FILE...`: run scenario files through the decision core on a virtual clock."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import click

from agents.simulate.expectations import ExpectationResult, check_expectations
from agents.simulate.runner import SimulationResult, TimelineEntry, run_scenario
from agents.simulate.scenario import load_scenario
from schemas.campaigns import CampaignFileError
from schemas.commands import CallWebhook, JourneyEvent, SendEmail
from schemas.durations import format_duration


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).isoformat().replace("+00:00", "Z")


def _line(entry: TimelineEntry) -> str:
    c = entry.command
    when = f"+{format_duration(entry.offset):<10} {_iso(entry.at)}"
    if isinstance(c, SendEmail):
        line = f"{when}  {c.person:<10} send {c.template}  ({c.reason})"
        if entry.render_error:
            line += f"\n{'':>35}render failed: {entry.render_error}"
        elif entry.rendered is not None:
            line += f"\n{'':>35}subject: {entry.rendered.subject}"
        return line
    if isinstance(c, CallWebhook):
        return f"{when}  {c.person:<10} webhook {c.url}  (campaign {c.campaign_id})"
    assert isinstance(c, JourneyEvent)
    return f"{when}  {c.person:<10} {c.event} {c.campaign_id}  ({c.reason})"


def _entry_json(entry: TimelineEntry) -> dict[str, Any]:
    data: dict[str, Any] = {
        "offset": format_duration(entry.offset),
        "at": _iso(entry.at),
        "command": entry.command.model_dump(mode="json", exclude={"context"}),
    }
    if entry.rendered is not None:
        data["rendered"] = entry.rendered.model_dump(mode="json")
    if entry.render_error is not None:
        data["render_error"] = entry.render_error
    return data


def _report_json(path: str, result: SimulationResult, checks: list[ExpectationResult]) -> dict[str, Any]:
    return {
        "file": path,
        "name": result.scenario.name,
        "passed": all(c.passed for c in checks),
        "timeline": [_entry_json(e) for e in result.timeline],
        "expectations": [
            {"expect": c.description, "passed": c.passed, "happened": c.happened} for c in checks
        ],
    }


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the timelines and results as JSON.")
def simulate(files: tuple[str, ...], as_json: bool) -> None:
    """Run each scenario FILE on a virtual clock, print the timeline and check its expectations.

    Exits 1 when an expectation fails, 2 when a file is invalid.
    """
    reports: list[dict[str, Any]] = []
    failed = invalid = 0
    for path in files:
        try:
            scenario = load_scenario(path)
        except CampaignFileError as exc:
            invalid += 1
            if as_json:
                reports.append({"file": path, "error": exc.problems})
            else:
                click.echo(str(exc), err=True)
            continue
        result = run_scenario(scenario)
        checks = check_expectations(result)
        bad = [c for c in checks if not c.passed]
        failed += bool(bad)
        if as_json:
            reports.append(_report_json(path, result, checks))
            continue
        click.echo(f"== {path}: {scenario.name}")
        click.echo(f"   start {_iso(scenario.start_unix)}, clock run for {format_duration(result.end_offset)}")
        for entry in result.timeline:
            click.echo("   " + _line(entry))
        for check in checks:
            mark = "PASS" if check.passed else "FAIL"
            text = f"   {mark} {check.description}"
            if not check.passed:
                text += f"\n        what happened: {check.happened}"
            click.echo(text)
        click.echo(f"   {len(checks) - len(bad)}/{len(checks)} expectations hold\n")
    if as_json:
        click.echo(json.dumps(reports, indent=2))
    else:
        click.echo(
            f"{len(files) - failed - invalid}/{len(files)} scenario(s) pass"
            + (f", {failed} failed" if failed else "")
            + (f", {invalid} invalid" if invalid else "")
        )
    if invalid:
        raise SystemExit(2)
    if failed:
        raise SystemExit(1)
