"""Run a scenario through the decision core on a virtual clock (`agents/simulate/virtual_clock.py`).

Its definitions come from the scenario itself, from a project folder, or both (`with_folder`).
Every command is kept with its virtual time, and sends are rendered with the production renderer
when there are templates.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from agents.person.campaign_set import CampaignSet
from agents.person.config import EngineConfig
from agents.render.email import TemplateRenderError, render_email
from agents.render.filters import rendering_at
from agents.simulate.project import Project, ProjectError
from agents.simulate.virtual_clock import VirtualClock
from schemas.commands import CallWebhook, Command, JourneyEvent, SendEmail
from schemas.inputs import (
    Delete,
    Delivery,
    Identify,
    Input,
    MergeInto,
    SegmentMembership,
    Suppress,
    Track,
    Unsubscribe,
)
from schemas.person import PersonState
from schemas.scenario import Scenario, ScenarioInput
from schemas.templates import EmailTemplate, RenderedEmail

# When the scenario names no `until`: this long after the last input or expected time.
DEFAULT_TAIL = 7 * 86400.0
# The links a simulated email carries (the live ones are signed per message).
SIMULATED_UNSUBSCRIBE_URL = "https://nudge.invalid/unsubscribe/SIMULATED"
SIMULATED_PREFERENCES_URL = "https://nudge.invalid/preferences/SIMULATED"


@dataclass(frozen=True)
class TimelineEntry:
    """One command the core issued, at its virtual time (`offset` seconds after start)."""

    offset: float
    at: float
    command: Command
    rendered: RenderedEmail | None = None
    render_error: str | None = None


@dataclass
class SimulationResult:
    """Everything a run produced: the timeline (sends, webhooks, journey events), the read-model
    commands (activity, snapshots) and emitted inputs apart, final states and the clock's end."""

    scenario: Scenario
    timeline: list[TimelineEntry] = field(default_factory=list)
    read_models: list[TimelineEntry] = field(default_factory=list)
    states: dict[str, PersonState] = field(default_factory=dict)
    end_offset: float = 0.0


def to_input(item: ScenarioInput, start: float, states: dict[str, PersonState] | None = None) -> Input:
    """A scenario input as the Input model production receives; a delivery outcome names the
    person's latest message from its template (found in `states`)."""
    at = start + item.at
    for status in ("opened", "clicked", "bounced"):
        template = getattr(item, status)
        if template is not None:
            state = (states or {}).get(item.person)
            found = [m for m in (state.messages if state is not None else []) if m.template == template]
            message_id = found[-1].id if found else f"no-{template}-message"
            return Delivery(person=item.person, at=at, message_id=message_id, status=status, template=template)
    if item.identify is not None:
        return Identify(
            person=item.person, at=at, attributes=item.identify, anonymous_id=item.anonymous_id
        )
    if item.track is not None:
        return Track(person=item.person, at=at, name=item.track, data=item.data, event_id=item.id)
    if item.page is not None:
        return Track(
            person=item.person, at=at, name=item.page, type="page",
            data={"url": item.page, **item.data}, event_id=item.id,
        )
    if item.delete:
        return Delete(person=item.person, at=at)
    if item.suppress is not None:
        return Suppress(person=item.person, at=at, suppressed=item.suppress)
    if item.merge_into is not None:
        return MergeInto(person=item.person, at=at, into=item.merge_into)
    if item.add_to_segment is not None:
        return SegmentMembership(person=item.person, at=at, segment=item.add_to_segment)
    if item.remove_from_segment is not None:
        return SegmentMembership(
            person=item.person, at=at, segment=item.remove_from_segment, member=False
        )
    assert item.unsubscribe is not None
    return Unsubscribe(person=item.person, at=at, unsubscribed=item.unsubscribe)


def end_offset(scenario: Scenario) -> float:
    """How long the clock runs: `until`, else 7d after the last input or expected time."""
    if scenario.until is not None:
        return scenario.until
    times = [i.at for i in scenario.inputs]
    times += [at for e in scenario.expect if (at := getattr(e, "at", None)) is not None]
    return max(times, default=0.0) + DEFAULT_TAIL


def inline_project(scenario: Scenario) -> Project:
    """The definitions a scenario file gives itself."""
    templates = {
        name: EmailTemplate(id=name, subject=t.subject, body=t.body, text=t.text)
        for name, t in scenario.templates.items()
    }
    return Project(
        campaigns=list(scenario.campaigns), segments=list(scenario.segments),
        computed=list(scenario.computed), templates=templates,
    )


def with_folder(scenario: Scenario, folder: Project) -> Project:
    """The folder's definitions plus the scenario's own; an id defined in both is an error."""
    own = inline_project(scenario)
    problems = []
    for kind, mine, theirs in (
        ("campaigns", own.campaigns, folder.campaigns),
        ("segments", own.segments, folder.segments),
        ("computed", own.computed, folder.computed),
    ):
        clash = sorted({d.id for d in mine} & {d.id for d in theirs})
        problems += [
            f"the scenario defines {kind} {i!r}, which {folder.where(kind)} also defines: "
            "remove the copy from the scenario (it would drift from what runs live)"
            for i in clash
        ]
    clash_templates = sorted(set(own.templates) & set(folder.templates))
    problems += [
        f"the scenario defines template {t!r}, which {folder.where('templates')} also has: remove the copy"
        for t in clash_templates
    ]
    if problems:
        raise ProjectError(folder.root, problems)
    return Project(
        root=folder.root,
        campaigns=folder.campaigns + own.campaigns,
        segments=folder.segments + own.segments,
        computed=folder.computed + own.computed,
        templates={**folder.templates, **own.templates},
        events=folder.events,
    )


def render_send(project: Project, command: SendEmail) -> tuple[RenderedEmail | None, str | None]:
    """Render a send with the production renderer, `now` being its decision time; no templates
    at all means nothing to render."""
    if not project.templates:
        return None, None
    template = project.templates.get(command.template)
    if template is None:
        return None, f"{project.where('templates')} has no template {command.template!r}"
    try:
        with rendering_at(command.decided_at):
            rendered = render_email(
                template, command.context,
                unsubscribe_url=SIMULATED_UNSUBSCRIBE_URL, preferences_url=SIMULATED_PREFERENCES_URL,
            )
        return rendered, None
    except TemplateRenderError as exc:
        return None, str(exc)


def build_campaigns(project: Project) -> CampaignSet:
    """The CampaignSet a worker would build from these definitions."""
    return CampaignSet.build(project.campaigns, segments=project.segments, computed=project.computed)


def run_scenario(
    scenario: Scenario, config: EngineConfig = EngineConfig(), project: Project | None = None
) -> SimulationResult:
    """Feed the inputs in time order, deliver wakes as timers fall due, collect the commands.

    `project` gives the definitions (default: the scenario's own).
    """
    project = project or inline_project(scenario)
    start = scenario.start_unix
    result = SimulationResult(scenario=scenario, end_offset=end_offset(scenario))

    def collect(now: float, item: Input, commands: list[Command]) -> None:
        for command in commands:
            if not isinstance(command, (SendEmail, CallWebhook, JourneyEvent)):
                result.read_models.append(TimelineEntry(now - start, now, command))
                continue
            rendered, error = render_send(project, command) if isinstance(command, SendEmail) else (None, None)
            result.timeline.append(TimelineEntry(now - start, now, command, rendered, error))

    clock = VirtualClock(build_campaigns(project), collect, config)
    # Stable: inputs at the same time keep their order in the file.
    for _, item in sorted(enumerate(scenario.inputs), key=lambda pair: (pair[1].at, pair[0])):
        if item.at > result.end_offset:
            break
        clock.feed(to_input(item, start, clock.states))
    clock.run_until(start + result.end_offset)
    result.states = clock.states
    return result
