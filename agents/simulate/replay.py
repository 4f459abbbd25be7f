"""Replay recorded inputs (what producers write to Kafka) against a project on a virtual clock. Pure.

Inputs are applied in the order given, each at its own time; timers fire as they fall due and,
after the last input, for `tail` seconds more. Recorded `wake` inputs are skipped: the engine
makes its own from the replayed state (a recorded one would fire twice). A recorded `absorb`
(a merge folding one person into another) is applied only when the recording holds none of the
folded person's own inputs (they are erased by the merge); otherwise the replayed merge makes
it. What comes out is what each campaign would send: every person's journeys, emails and
webhooks, and totals.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from agents.check.event_schema import event_problems
from agents.person.config import EngineConfig
from agents.simulate.project import Project
from agents.simulate.runner import build_campaigns, render_send
from agents.simulate.totals import Totals
from agents.simulate.virtual_clock import VirtualClock
from schemas.commands import CallWebhook, Command, JourneyEvent, SendEmail
from schemas.inputs import Absorb, Input, Track

# Inputs only the engine itself produces; replaying a recorded one would apply it twice.
ENGINE_MADE = ("wake",)
# Problems kept word for word (the rest are counted).
KEEP_PROBLEMS = 20


@dataclass(frozen=True)
class Recorded:
    """One line of a recording: its number and the inputs it holds, or why it holds none."""

    line: int
    inputs: tuple[Input, ...] = ()
    error: str | None = None
    # Each input as it was written (JSON), when read from a file: kept on its activity line.
    data: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class Happening:
    """One thing the replay decided for a person: a journey event, an email or a webhook call."""

    at: float
    person: str
    kind: str
    campaign: str | None
    text: str
    message_id: str | None = None
    subject: str | None = None
    render_error: str | None = None

    def as_json(self) -> dict[str, Any]:
        """Plain data, without empty fields."""
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass
class ReplayReport:
    """What a replay read, skipped and decided."""

    inputs: int = 0
    lines: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    problem_count: int = 0
    # events.yaml: problem -> how many inputs had it.
    undeclared: Counter[str] = field(default_factory=Counter)
    people: set[str] = field(default_factory=set)
    timelines: dict[str, list[Happening]] = field(default_factory=dict)
    totals: Totals = field(default_factory=Totals)
    first_at: float | None = None
    last_at: float | None = None
    end: float | None = None
    decisions: int = 0

    def problem(self, text: str) -> None:
        """Note a line that could not be replayed."""
        self.problem_count += 1
        if len(self.problems) < KEEP_PROBLEMS:
            self.problems.append(text)


def _happening(command: Command, rendered_subject: str | None, error: str | None) -> Happening | None:
    if isinstance(command, SendEmail):
        return Happening(
            at=command.decided_at, person=command.person, kind="send", campaign=command.campaign_id,
            text=f"send {command.template} (step {command.step})", message_id=command.message_id,
            subject=rendered_subject, render_error=error,
        )
    if isinstance(command, CallWebhook):
        return Happening(
            at=command.decided_at, person=command.person, kind="webhook", campaign=command.campaign_id,
            text=f"webhook {command.url}", message_id=command.call_id,
        )
    if isinstance(command, JourneyEvent) and command.event != "step":
        return Happening(
            at=command.at, person=command.person, kind=command.event, campaign=command.campaign_id,
            text=f"{command.event} {command.campaign_id}: {command.reason}",
        )
    return None


def replay(
    recording: Iterable[Recorded],
    project: Project,
    *,
    tail: float = 0.0,
    people: set[str] | None = None,
    render: bool = True,
    strict_events: bool = False,
    config: EngineConfig = EngineConfig(),
    on_line: Callable[[Recorded], None] | None = None,
) -> ReplayReport:
    """Apply every recorded input, fire timers `tail` seconds past the last one, report.

    `people` limits the timelines kept (totals always count everyone); `strict_events` refuses
    events `events.yaml` does not declare, as the API would with NUDGE_STRICT_EVENTS.
    """
    report = ReplayReport()

    def decided(now: float, item: Input, commands: list[Command]) -> None:
        for command in commands:
            if not isinstance(command, (SendEmail, CallWebhook, JourneyEvent)):
                continue
            subject = error = None
            if render and isinstance(command, SendEmail):
                rendered, error = render_send(project, command)
                subject = rendered.subject if rendered is not None else None
            report.totals.add(command, render_failed=error is not None)
            if people is None or command.person in people:
                happening = _happening(command, subject, error)
                if happening is not None:
                    report.timelines.setdefault(command.person, []).append(happening)

    clock = VirtualClock(build_campaigns(project), decided, config)
    for record in recording:
        report.lines += 1
        if on_line is not None:
            on_line(record)
        if record.error is not None:
            report.problem(f"line {record.line}: {record.error}")
            continue
        for index, item in enumerate(record.inputs):
            if item.kind in ENGINE_MADE or (isinstance(item, Absorb) and item.source in report.people):
                report.skipped[item.kind] += 1
                continue
            if project.events is not None and isinstance(item, Track) and item.type == "event":
                found = event_problems(project.events, item.name, item.data)
                report.undeclared.update(found)
                if found and strict_events:
                    report.skipped["refused by events.yaml"] += 1
                    continue
            report.inputs += 1
            report.people.add(item.person)
            report.first_at = item.at if report.first_at is None else min(report.first_at, item.at)
            report.last_at = item.at if report.last_at is None else max(report.last_at, item.at)
            clock.feed(item, record.data[index] if index < len(record.data) else None)
    if report.last_at is not None:
        report.end = max(clock.now, report.last_at + tail)
        clock.run_until(report.end)
    report.decisions = clock.decisions
    for letter in clock.dead_letters:
        report.problem(f"dead-lettered, as the live worker would: {letter.reason} ({letter.value[:120]!r})")
    return report
