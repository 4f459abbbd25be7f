"""Run a scenario through the decision core on a virtual clock.

The clock jumps from input to timer to input; a timer's wake is delivered when it falls due,
exactly as the Faust shell's timer heap would. Every command is kept with its virtual time, and
sends are rendered with the production renderer when the scenario gives templates.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field

from agents.person.campaign_set import CampaignSet
from agents.person.config import EngineConfig
from agents.person.engine import decide
from agents.render.email import TemplateRenderError, render_email
from schemas.commands import CallWebhook, Command, EmitInput, JourneyEvent, SendEmail
from schemas.inputs import (
    Delete,
    Identify,
    Input,
    MergeInto,
    SegmentMembership,
    Suppress,
    Track,
    Unsubscribe,
    Wake,
)
from schemas.person import PersonState
from schemas.scenario import Scenario, ScenarioInput
from schemas.templates import EmailTemplate, RenderedEmail

# When the scenario names no `until`: this long after the last input or expected time.
DEFAULT_TAIL = 7 * 86400.0


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


def to_input(item: ScenarioInput, start: float) -> Input:
    """A scenario input as the Input model production receives."""
    at = start + item.at
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
    times += [e.at for e in scenario.expect if getattr(e, "at", None) is not None]
    return max(times, default=0.0) + DEFAULT_TAIL


def _render(scenario: Scenario, command: SendEmail) -> tuple[RenderedEmail | None, str | None]:
    if not scenario.templates:
        return None, None
    source = scenario.templates.get(command.template)
    if source is None:
        return None, f"the scenario has no template {command.template!r}"
    template = EmailTemplate(
        id=command.template, subject=source.subject, body=source.body, text=source.text
    )
    try:
        return render_email(template, command.context), None
    except TemplateRenderError as exc:
        return None, str(exc)


def run_scenario(scenario: Scenario, config: EngineConfig = EngineConfig()) -> SimulationResult:
    """Feed the inputs in time order, deliver wakes as timers fall due, collect the commands."""
    campaigns = CampaignSet.build(
        scenario.campaigns, segments=scenario.segments, computed=scenario.computed
    )
    start = scenario.start_unix
    result = SimulationResult(scenario=scenario, end_offset=end_offset(scenario))
    stop = start + result.end_offset
    # Stable: inputs at the same time keep their order in the file.
    pending = sorted(enumerate(scenario.inputs), key=lambda pair: (pair[1].at, pair[0]))
    heap: list[tuple[float, str, str]] = []
    queued: set[tuple[float, str, str]] = set()
    states = result.states
    index = 0
    last_now = start
    # Inputs the core emitted (merges), delivered right away, before the next input or timer,
    # as the input topic would deliver them a moment later.
    emitted: list[Input] = []

    def live(entry: tuple[float, str, str]) -> bool:
        due, person, timer_id = entry
        state = states.get(person)
        return state is not None and state.timers.get(timer_id) == due

    while True:
        while heap and not live(heap[0]):
            heapq.heappop(heap)
        if emitted:
            item: Input = emitted.pop(0)
            person = item.person
            # Handled at the time of the decision that emitted it.
            now = last_now
        else:
            next_input = start + pending[index][1].at if index < len(pending) else float("inf")
            next_timer = heap[0][0] if heap else float("inf")
            now = min(next_input, next_timer)
            if now > stop:
                break
            if next_timer <= next_input:
                due, person, timer_id = heapq.heappop(heap)
                item = Wake(person=person, at=due, timer_id=timer_id, due=due)
            else:
                item = to_input(pending[index][1], start)
                person = item.person
                index += 1
        last_now = now
        old = states.get(person)
        new, commands = decide(old, item, campaigns, now, config)
        if new is None:
            states.pop(person, None)
        else:
            states[person] = new
            for timer_id, due in new.timers.items():
                if (due, person, timer_id) not in queued:
                    queued.add((due, person, timer_id))
                    heapq.heappush(heap, (due, person, timer_id))
        for command in commands:
            if isinstance(command, EmitInput):
                emitted.append(command.input)
            if not isinstance(command, (SendEmail, CallWebhook, JourneyEvent)):
                result.read_models.append(TimelineEntry(now - start, now, command))
                continue
            rendered, error = _render(scenario, command) if isinstance(command, SendEmail) else (None, None)
            result.timeline.append(TimelineEntry(now - start, now, command, rendered, error))
    return result
