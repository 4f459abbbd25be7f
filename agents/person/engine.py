"""`decide`: the pure decision core. One person's state and one input in; new state and commands out.

No I/O and no wall clock: `now` is an argument. Every decision first fires the person's timers
that are due by `now`, in due order and each at its own due time (so a late wake, or an input
that overtakes one, changes nothing), then applies the input, then settles: segments, date
triggers, journeys. Timers are data: `state.timers` is recomputed at the end of every decision.
"""

from __future__ import annotations

from agents.person.campaign_set import CampaignSet
from agents.person.conditions import earliest
from agents.person.config import EngineConfig
from agents.person.decision import Decision, copy_state
from agents.person.journeys import advance_journey, end_journey, keep_journey, start_journey, watch_time
from agents.person.segments import update_segments
from agents.person.step_paths import step_at
from agents.person.triggers import Hit, arm_dates, attribute_hits, due_date_hits, event_hits, segment_hits
from schemas.campaigns import TimeWindowStep, WaitStep, WaitUntilStep
from schemas.commands import Command
from schemas.history import EventAggregate, EventRecord
from schemas.inputs import Delete, Delivery, Identify, Input, Suppress, Track, Unsubscribe, Wake
from schemas.person import PersonState

_DEFAULT_CONFIG = EngineConfig()


def decide(
    state: PersonState | None,
    input: Input,
    campaigns: CampaignSet,
    now: float,
    config: EngineConfig = _DEFAULT_CONFIG,
) -> tuple[PersonState | None, list[Command]]:
    """Apply one input to one person at `now`; a None state back means the person is erased."""
    if isinstance(input, Delete):
        return None, []
    is_new = state is None
    if state is None:
        # Outcomes and wakes for a person who doesn't exist (any more) change nothing.
        if isinstance(input, (Wake, Delivery)):
            return None, []
        state = PersonState(person=input.person, first_seen=min(now, input.at))
    else:
        state = copy_state(state)
    d = Decision(state=state, campaigns=campaigns, config=config)
    horizon = now
    if isinstance(input, Wake) and state.timers.get(input.timer_id) == input.due:
        # A valid wake fires its timer even if this worker's clock lags the scanner's.
        horizon = max(now, input.due)
    _catch_up(d, horizon)
    hits = _apply(d, input, now, is_new)
    _settle(d, now, hits)
    return d.state, d.commands


def _catch_up(d: Decision, horizon: float) -> None:
    """Fire every timer due by `horizon`, earliest first, each at its own due time."""
    for _ in range(d.config.max_catch_up):
        if not d.state.timers:
            return
        due = min(d.state.timers.values())
        if due > horizon:
            return
        _settle(d, due, [])
        # Guard against a timer that settling could not move past `due`.
        d.state.timers = {k: v for k, v in d.state.timers.items() if v > due}


def _apply(d: Decision, input: Input, now: float, is_new: bool) -> list[Hit]:
    """Change the state as the input says; return the campaign triggers it produced."""
    state = d.state
    if isinstance(input, Identify):
        changed: dict[str, tuple[object, object]] = {}
        for name, value in input.attributes.items():
            old = state.attributes.get(name)
            if value is None:
                state.attributes.pop(name, None)
            else:
                state.attributes[name] = value
            if old != value:
                changed[name] = (old, value)
        if "email" in input.attributes:
            email = input.attributes["email"]
            state.email = email if isinstance(email, str) else None
        # The identify that creates a person sets attributes; it doesn't change them.
        return [] if is_new else attribute_hits(d, changed, now)
    if isinstance(input, Track):
        if input.event_id is not None:
            if input.event_id in state.seen_event_ids:
                return []
            state.seen_event_ids.append(input.event_id)
            excess = len(state.seen_event_ids) - d.config.seen_event_ids_limit
            if excess > 0:
                del state.seen_event_ids[:excess]
        event = EventRecord(
            name=input.name, at=input.at, data=dict(input.data), type=input.type,
            event_id=input.event_id,
        )
        _record(d, event)
        return event_hits(d, event)
    if isinstance(input, Suppress):
        state.suppressed = input.suppressed
    elif isinstance(input, Unsubscribe):
        state.unsubscribed = input.unsubscribed
        if input.message_id is not None:
            _mark_message(d, input.message_id, "unsubscribed")
    elif isinstance(input, Delivery):
        _mark_message(d, input.message_id, input.status)
        if input.status == "complained":
            # A spam complaint is the strongest unsubscribe there is.
            state.unsubscribed = True
    return []


def _record(d: Decision, event: EventRecord) -> None:
    history = d.state.history
    history.recent.append(event)
    del history.recent[: -d.config.history_limit]
    aggregate = history.aggregates.get(event.name) or EventAggregate()
    history.aggregates[event.name] = EventAggregate(
        count=aggregate.count + 1,
        first_at=event.at if aggregate.first_at is None else min(aggregate.first_at, event.at),
        last_at=event.at if aggregate.last_at is None else max(aggregate.last_at, event.at),
    )


# Delivery statuses and what each implies about the message.
_IMPLIED = {
    "sent": ("delivered",),
    "opened": ("delivered", "opened"),
    "clicked": ("delivered", "opened", "clicked"),
}


def _mark_message(d: Decision, message_id: str, status: str) -> None:
    for record in d.state.messages:
        if record.id == message_id:
            for s in _IMPLIED.get(status, (status,)):
                if s not in record.statuses:
                    record.statuses.append(s)
            return


def _settle(d: Decision, t: float, hits: list[Hit]) -> None:
    """Bring everything to `t`: segments, date triggers, running journeys, new journeys, timers."""
    state = d.state
    for _ in range(d.config.max_rounds):
        d.changed = {}
        hits = hits + segment_hits(d, update_segments(d, t), t) + due_date_hits(d, t)
        _advance_journeys(d, t)
        for entry, trigger in hits:
            start_journey(d, entry, trigger, t)
        arm_dates(d, t)
        if not d.changed:
            break
        # A `set` step changed attributes: segments and attribute_changed campaigns react.
        hits = attribute_hits(d, d.changed, t)
    _refresh_timers(d, t)


def _advance_journeys(d: Decision, t: float) -> None:
    for journey in list(d.state.journeys):
        current = d.campaigns.current.get(journey.campaign)
        if current is None:
            if journey.status == "active":
                end_journey(d, journey, "exited", t, "campaign removed")
            continue
        campaign = d.campaigns.get(journey.campaign, journey.version)
        if campaign is None:
            # The version it entered with is unknown here: carry on with the current one when
            # the position means the same kind of thing there, else leave cleanly.
            step = step_at(current.campaign.steps, journey.position)
            waiting = journey.resume_at is not None or journey.waiting_since is not None
            fits = step is not None and (
                not waiting or isinstance(step, (WaitStep, TimeWindowStep, WaitUntilStep))
            )
            if journey.status == "active" and not fits:
                end_journey(d, journey, "exited", t, "campaign version no longer available")
                continue
            journey.version, campaign = current.version, current.campaign
        advance_journey(d, journey, campaign, t)


def _refresh_timers(d: Decision, t: float) -> None:
    """Drop finished journeys whose goal window closed, and derive every timer from the state."""
    state = d.state
    kept = []
    timers: dict[str, float] = {}
    for journey in state.journeys:
        campaign = d.campaigns.get(journey.campaign, journey.version)
        if journey.campaign not in d.campaigns.current or not keep_journey(journey, campaign, t):
            continue
        kept.append(journey)
        assert campaign is not None
        journey.watch_at = watch_time(d, journey, campaign, t)
        due = earliest(journey.resume_at if journey.status == "active" else None, journey.watch_at)
        if due is not None:
            timers[f"journey:{journey.id}"] = due
    state.journeys = kept
    for segment_id, flip in d.segment_flips.items():
        timers[f"segment:{segment_id}"] = flip
    for campaign_id, moment in state.date_moments.items():
        timers[f"date:{campaign_id}"] = moment
    state.timers = timers
