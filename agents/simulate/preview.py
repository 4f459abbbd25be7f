"""A person rebuilt from their recorded inputs, and the context a template renders with for them.

`nudge preview` replays the inputs the live stack applied to a person (their activity) through
the decision core, up to now, against the project folder: that gives their attributes, computed
attributes, event history and journeys, the state the delivery loop's context comes from. The
trigger event is a journey's (the one its sends carried) or the latest event of a name. Pure.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from agents.person.render_context import history_of
from agents.person.state_codec import events
from agents.simulate.project import Project
from agents.simulate.replay import ENGINE_MADE
from agents.simulate.runner import build_campaigns
from agents.simulate.virtual_clock import VirtualClock
from schemas.commands import Command, RenderContext, SendEmail
from schemas.errors import InputError
from schemas.inputs import Input
from schemas.person import PersonState


class PreviewError(InputError):
    """The person, journey or event asked for is not there; the message says what is."""


@dataclass
class Rebuilt:
    """A person as their inputs leave them now, and the context of each journey's sends."""

    state: PersonState | None
    # Journey id -> the render context its last send carried (for its trigger event).
    sends: dict[str, SendEmail] = field(default_factory=dict)
    inputs: int = 0


def rebuild(person: str, inputs: Iterable[Input], project: Project, now: float) -> Rebuilt:
    """Replay the person's recorded `inputs`, in the order recorded, up to `now`."""
    rebuilt = Rebuilt(state=None)

    def decided(at: float, item: Input, commands: list[Command]) -> None:
        for command in commands:
            if isinstance(command, SendEmail) and command.person == person and command.journey_id:
                rebuilt.sends[command.journey_id] = command

    clock = VirtualClock(build_campaigns(project), decided)
    for item in inputs:
        if item.at > now or item.kind in ENGINE_MADE:
            continue
        rebuilt.inputs += 1
        clock.feed(item)
    clock.run_until(now)
    rebuilt.state = clock.states.get(person)
    return rebuilt


def _trigger_of_journey(rebuilt: Rebuilt, journey: str) -> tuple[str | None, dict[str, Any], dict[str, Any]]:
    """(event name, event data, campaign) of a journey, by id or by campaign id (the latest)."""
    state = rebuilt.state
    assert state is not None
    running = [j for j in state.journeys if journey in (j.id, j.campaign)]
    if running:
        j = running[-1]
        return j.trigger.name, dict(j.trigger.data), {"id": j.campaign, "version": j.version}
    sent = [s for s in rebuilt.sends.values() if journey in (s.journey_id, s.campaign_id)]
    if sent:
        last = max(sent, key=lambda s: s.decided_at)
        context = last.context
        return context.event_name, dict(context.event), dict(context.campaign)
    known = sorted({j.campaign for j in state.journeys} | {s.campaign_id or "" for s in rebuilt.sends.values()} - {""})
    raise PreviewError(
        f"{state.person} has no journey {journey!r} (by journey id or campaign id); "
        f"their journeys: {', '.join(known) or 'none'}"
    )


def _latest_event(state: PersonState, name: str) -> dict[str, Any]:
    recent = events(state)
    found = [e for e in recent if e.name == name]
    if not found:
        known = sorted({e.name for e in recent})
        raise PreviewError(
            f"{state.person} has no recent {name!r} event; their recent events: {', '.join(known) or 'none'}"
        )
    return dict(max(enumerate(found), key=lambda pair: (pair[1].at, pair[0]))[1].data)


def preview_context(
    rebuilt: Rebuilt,
    *,
    journey: str | None = None,
    event: str | None = None,
    data: dict[str, Any] | None = None,
    attributes: dict[str, Any] | None = None,
) -> RenderContext:
    """The context the delivery loop would build for this person now: their attributes and
    history, and the trigger event of `journey`, or their latest `event` (`data` over it)."""
    state = rebuilt.state
    if state is None:
        raise PreviewError("the person does not exist (never identified, merged away, or deleted)")
    name: str | None = None
    trigger: dict[str, Any] = {}
    campaign: dict[str, Any] = {}
    if journey is not None:
        name, trigger, campaign = _trigger_of_journey(rebuilt, journey)
    elif event is not None:
        try:
            name, trigger = event, _latest_event(state, event)
        except PreviewError:
            if data is None:
                raise
            name, trigger = event, {}
    if data is not None:
        trigger = {**trigger, **data}
    return RenderContext(
        customer={**state.attributes, **(attributes or {})},
        event=trigger,
        event_name=name,
        campaign=campaign,
        history=history_of(state),
    )
