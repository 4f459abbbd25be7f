"""`nudge simulate`: run scenario files, or replay a recorded input file, through the decision core
on a virtual clock, against the real project folder."""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from agents.check.event_schema import event_problems
from agents.simulate.expectations import ExpectationResult, check_expectations
from agents.simulate.project import Project, ProjectError, load_project
from agents.simulate.recording import RecordingError, read_recording
from agents.simulate.replay import Happening, ReplayReport, replay
from agents.simulate.runner import SimulationResult, TimelineEntry, inline_project, run_scenario, with_folder
from agents.simulate.scenario import load_scenario
from agents.simulate.totals import Totals
from schemas.campaigns import CampaignFileError
from schemas.commands import CallWebhook, JourneyEvent, SendEmail
from schemas.durations import format_duration, parse_duration
from schemas.scenario import Scenario
from streams.settings import Settings


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")


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


def _totals(result: SimulationResult) -> Totals:
    totals = Totals()
    for entry in result.timeline:
        totals.add(entry.command, render_failed=entry.render_error is not None)
    return totals


def _report_json(path: str, result: SimulationResult, checks: list[ExpectationResult]) -> dict[str, Any]:
    return {
        "file": path,
        "name": result.scenario.name,
        "passed": all(c.passed for c in checks),
        "timeline": [_entry_json(e) for e in result.timeline],
        "expectations": [
            {"expect": c.description, "passed": c.passed, "happened": c.happened} for c in checks
        ],
        "totals": _totals(result).as_json(),
    }


class _Folders:
    """Project folders, each loaded once."""

    def __init__(self) -> None:
        self._loaded: dict[Path, Project] = {}

    def get(self, root: Path) -> Project:
        if root not in self._loaded:
            self._loaded[root] = load_project(root)
        return self._loaded[root]


def _project_for(scenario: Scenario, folder: Path | None, default: Path, folders: _Folders) -> Project:
    """The scenario's definitions: with `--campaigns`, the folder's plus its own; without, its
    own when it has campaigns, else the default folder's (NUDGE_CAMPAIGNS_DIR)."""
    if folder is not None:
        return with_folder(scenario, folders.get(folder))
    if scenario.campaigns:
        return inline_project(scenario)
    try:
        return with_folder(scenario, folders.get(default))
    except ProjectError as exc:
        raise ProjectError(exc.root, [
            f"the scenario defines no campaigns, so it runs against NUDGE_CAMPAIGNS_DIR "
            f"({default.resolve()}); give the folder with --campaigns DIR", *exc.problems,
        ]) from exc


def _event_warnings(scenario: Scenario, project: Project) -> list[str]:
    if project.events is None:
        return []
    warnings = []
    for index, item in enumerate(scenario.inputs):
        if item.track is not None:
            for problem in event_problems(project.events, item.track, item.data):
                warnings.append(f"inputs[{index}] (at {format_duration(item.at)}, {item.person}): {problem}")
    return warnings


def _run_scenarios(
    files: tuple[str, ...], folder: Path | None, settings: Settings, as_json: bool
) -> None:
    reports: list[dict[str, Any]] = []
    failed = invalid = 0
    folders = _Folders()
    for path in files:
        try:
            scenario = load_scenario(path)
            project = _project_for(scenario, folder, settings.campaigns_dir, folders)
        except (CampaignFileError, ProjectError) as exc:
            invalid += 1
            problems = exc.problems if isinstance(exc, CampaignFileError) else [str(exc)]
            if as_json:
                reports.append({"file": path, "error": problems})
            else:
                click.echo(f"{path}: cannot run it:\n" + "\n".join(f"  {p}" for p in str(exc).splitlines()), err=True)
            continue
        result = run_scenario(scenario, project=project)
        checks = check_expectations(result)
        bad = [c for c in checks if not c.passed]
        failed += bool(bad)
        if as_json:
            reports.append(_report_json(path, result, checks))
            continue
        source = f"definitions from {project.root}" if project.root is not None else "definitions inline"
        click.echo(f"== {path}: {scenario.name}")
        click.echo(
            f"   start {_iso(scenario.start_unix)}, clock run for {format_duration(result.end_offset)}, {source}"
        )
        for warning in _event_warnings(scenario, project):
            click.echo(f"   warning: {warning}")
        for entry in result.timeline:
            if isinstance(entry.command, JourneyEvent) and entry.command.event == "step":
                continue  # provenance, for the read side; --json has it
            click.echo("   " + _line(entry))
        for line in _totals(result).lines():
            click.echo("   " + line)
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


def _happening_line(h: Happening) -> str:
    line = f"   {_iso(h.at)}  {h.text}"
    if h.message_id:
        line += f"  [{h.message_id}]"
    if h.render_error:
        line += f"\n{'':>25}render failed: {h.render_error}"
    elif h.subject is not None:
        line += f"\n{'':>25}subject: {h.subject}"
    return line


def _print_replay(path: Path, report: ReplayReport, seconds: float, summary: bool) -> None:
    rate = report.inputs / seconds if seconds > 0 else float("inf")
    for problem in report.problems:
        click.echo(f"{path}: {problem}", err=True)
    if report.problem_count > len(report.problems):
        click.echo(f"{path}: ... and {report.problem_count - len(report.problems)} more lines that are not inputs", err=True)
    for problem, count in report.undeclared.most_common():
        click.echo(f"warning: {problem} ({count} input{'s' if count != 1 else ''})", err=True)
    if not summary:
        for person in sorted(report.timelines):
            click.echo(f"== {person}")
            for happening in report.timelines[person]:
                click.echo(_happening_line(happening))
    click.echo("== totals")
    for line in report.totals.lines() or ["no campaign started a journey"]:
        click.echo(line)
    skipped = ", ".join(f"{n} {kind}" for kind, n in sorted(report.skipped.items()))
    span = (
        f"; virtual clock {_iso(report.first_at)} to {_iso(report.end)}"
        if report.first_at is not None and report.end is not None else ""
    )
    click.echo(
        f"replayed {report.inputs:,} inputs of {report.lines:,} lines for {len(report.people):,} people "
        f"in {seconds:.1f}s ({rate:,.0f} inputs/s; {report.decisions:,} decisions with timers)"
        + (f"; skipped {skipped}" if skipped else "")
        + (f"; {report.problem_count} invalid lines" if report.problem_count else "")
        + span
    )


def _replay_json(path: Path, report: ReplayReport, seconds: float) -> dict[str, Any]:
    return {
        "file": str(path),
        "inputs": report.inputs,
        "lines": report.lines,
        "people": len(report.people),
        "seconds": round(seconds, 3),
        "skipped": dict(report.skipped),
        "problems": report.problems,
        "problem_count": report.problem_count,
        "undeclared": dict(report.undeclared),
        "timelines": {p: [h.as_json() for h in hs] for p, hs in sorted(report.timelines.items())},
        "totals": report.totals.as_json(),
    }


def _replay(
    events: Path, folder: Path, tail: float, people: tuple[str, ...], summary: bool,
    as_json: bool, render: bool, strict: bool,
) -> None:
    try:
        project = load_project(folder)
    except ProjectError as exc:
        raise click.ClickException(f"cannot load {folder}:\n" + "\n".join(f"  {p}" for p in exc.problems)) from exc
    started = time.perf_counter()
    size = events.stat().st_size
    show = sys.stderr.isatty() and not as_json
    with click.progressbar(length=size, label=f"replaying {events.name}", file=sys.stderr,
                           show_pos=False, show_eta=True, hidden=not show) as bar:
        pending = [0]

        def advance(count: int) -> None:
            # Redrawing per line would cost more than the replay: every 256 KiB.
            pending[0] += count
            if pending[0] >= 262_144:
                bar.update(pending[0])
                pending[0] = 0

        try:
            report = replay(
                read_recording(events, advance), project, tail=tail,
                people=set(people) or None, render=render, strict_events=strict,
            )
        except RecordingError as exc:
            raise click.ClickException(str(exc)) from exc
        bar.update(pending[0])
    seconds = time.perf_counter() - started
    if as_json:
        click.echo(json.dumps(_replay_json(events, report, seconds), indent=2))
    else:
        _print_replay(events, report, seconds, summary)


def _duration(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc


@click.command()
@click.argument("files", nargs=-1, type=click.Path(exists=True, dir_okay=False))
@click.option("--campaigns", "folder", type=click.Path(file_okay=False, path_type=Path),
              help="The project folder (campaigns/, segments/, computed/, templates/, events.yaml); "
                   "default NUDGE_CAMPAIGNS_DIR.")
@click.option("--events", "events", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Replay this recorded input file (JSON Lines, as producers write to Kafka "
                   "or `nudge activity --export` writes) instead of scenario files.")
@click.option("--until", "until", callback=_duration, default=None,
              help="With --events: run the clock this long after the last input (default 7d).")
@click.option("--person", "people", multiple=True, help="With --events: print only these people's timelines.")
@click.option("--summary", is_flag=True, help="With --events: print the totals only.")
@click.option("--no-render", "no_render", is_flag=True, help="With --events: do not render the emails.")
@click.option("--strict-events/--lenient-events", "strict", default=None,
              help="Refuse events events.yaml does not declare, as the API does (default NUDGE_STRICT_EVENTS).")
@click.option("--json", "as_json", is_flag=True, help="Print the timelines and results as JSON.")
def simulate(
    files: tuple[str, ...], folder: Path | None, events: Path | None, until: float | None,
    people: tuple[str, ...], summary: bool, no_render: bool, strict: bool | None, as_json: bool,
) -> None:
    """Run scenario FILES on a virtual clock, print their timelines and check their expectations;
    or, with --events, replay a recorded input file against the project folder.

    A scenario without campaigns of its own runs against the folder (--campaigns, default
    NUDGE_CAMPAIGNS_DIR). Exits 1 when an expectation fails, 2 when a file is invalid.
    """
    settings = Settings.from_env()
    if events is not None:
        if files:
            raise click.UsageError("give scenario FILES or --events FILE.jsonl, not both")
        tail = 7 * 86400.0 if until is None else until
        _replay(
            events, folder or settings.campaigns_dir, tail, people, summary, as_json,
            not no_render, settings.strict_events if strict is None else strict,
        )
        return
    if not files:
        raise click.UsageError("give scenario FILES, or --events FILE.jsonl to replay a recording")
    if until is not None or people or summary or no_render:
        raise click.UsageError("--until, --person, --summary and --no-render go with --events")
    _run_scenarios(files, folder, settings, as_json)
