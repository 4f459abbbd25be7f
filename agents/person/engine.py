"""`decide`: the pure decision core. One person's state and one input in; new state and commands out.

No I/O and no wall clock: `now` is an argument. Every decision first fires the person's timers
that are due by `now`, in due order and each at its own due time (so a late wake, or an input
that overtakes one, changes nothing), then applies the input, then settles: segments, date
triggers, journeys. Timers are data: `state.timers` is recomputed at the end of every decision.
"""

from __future__ import annotations

from agents.person.campaign_set import CampaignSet
from agents.person.broadcasts import send_broadcast
from agents.person.computed import apply_event
from agents.person.conditions import earliest
from agents.person.config import EngineConfig
from agents.person.decision import Decision, copy_state
from agents.person.journeys import advance_journey, end_journey, keep_journey, start_journey, watch_time
from agents.person.merge import fold
from agents.person.read_models import erased, read_model_commands
from agents.person.segments import update_segments
from agents.person.step_paths import step_at
from agents.person.triggers import Hit, arm_dates, attribute_hits, due_date_hits, event_hits, segment_hits
from schemas.campaigns import TimeWindowStep, WaitStep, WaitUntilStep
from schemas.commands import Command, EmitInput, JourneyEvent
from schemas.history import EventAggregate, EventRecord
from schemas.inputs import (
    Absorb,
    BroadcastSend,
    Delete,
    Delivery,
    Devices,
    Identify,
    Input,
    MergeInto,
    Reevaluate,
    SegmentMembership,
    Suppress,
    Track,
    Unsubscribe,
    Wake,
    anonymous_person,
)
from schemas.person import Device, PersonState

_DEFAULT_CONFIG = EngineConfig()

# Inputs that only mean something for a person who already exists.
_NEEDS_PERSON = (Wake, Delivery, Reevaluate, MergeInto, Unsubscribe, BroadcastSend)


def decide(
    state: PersonState | None,
    input: Input,
    campaigns: CampaignSet,
    now: float,
    config: EngineConfig = _DEFAULT_CONFIG,
) -> tuple[PersonState | None, list[Command]]:
    """Apply one input to one person at `now`; a None state back means the person is erased."""
    if isinstance(input, Delete):
        return None, _leave_journeys(state, now, "person deleted") + [erased(input.person, now)]
    if state is None and (
        isinstance(input, _NEEDS_PERSON) or (isinstance(input, Identify) and input.update_only)
    ):
        # Outcomes, wakes, merges and unsubscribes for a person who doesn't exist (any more)
        # change nothing; neither does an identify marked `_update` (update, never create).
        return None, []
    if isinstance(input, MergeInto):
        assert state is not None
        return _merge_into(state, input, now)
    if isinstance(input, Suppress):
        if input.suppressed:
            return _suppress(state, input, now)
        if state is None or not state.suppressed:
            return state, []
    elif state is not None and state.suppressed:
        # Customer.io's rule: a suppressed person's data is ignored until they are unsuppressed.
        return state, []
    if isinstance(input, SegmentMembership) and not _is_manual(campaigns, input.segment):
        return state, []
    if isinstance(input, Absorb) and input.source == input.person:
        return state, []
    old = state
    is_new = state is None
    if state is None:
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
    d.commands.extend(read_model_commands(old, d.state, input, d.commands, now))
    return d.state, d.commands


def _is_manual(campaigns: CampaignSet, segment_id: str) -> bool:
    segment = campaigns.segments.get(segment_id)
    return segment is not None and segment.manual


def _leave_journeys(state: PersonState | None, now: float, reason: str) -> list[Command]:
    """`exited` for each running journey of a person who is going away, so metrics add up."""
    if state is None:
        return []
    return [
        JourneyEvent(
            event="exited", person=state.person, campaign_id=j.campaign,
            campaign_version=j.version, journey_id=j.id, at=now, reason=reason,
        )
        for j in state.journeys if j.status == "active"
    ]


def _merge_into(state: PersonState, input: MergeInto, now: float) -> tuple[PersonState | None, list[Command]]:
    """Hand this (secondary) person over to `input.into`, then erase them here."""
    if input.into == state.person:
        return state, []
    commands: list[Command] = []
    if not state.suppressed:
        handed = state.model_dump(mode="json", exclude_defaults=True, exclude={"timers", "last_position"})
        absorb = Absorb(person=input.into, at=input.at, source=state.person, state=handed)
        commands.append(EmitInput(input=absorb))
    return None, commands + [erased(state.person, now)]


def _suppress(state: PersonState | None, input: Suppress, now: float) -> tuple[PersonState, list[Command]]:
    """Forget the person's data and keep a tombstone that ignores their inputs until unsuppressed."""
    if state is not None and state.suppressed:
        return state, []
    person = input.person
    tombstone = PersonState(
        person=person, first_seen=min(now, input.at) if state is None else state.first_seen, suppressed=True
    )
    commands = _leave_journeys(state, now, "person suppressed")
    commands.append(erased(person, now))
    commands.extend(read_model_commands(None, tombstone, input, [], now))
    return tombstone, commands


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
        if input.anonymous_id is not None:
            _adopt_anonymous(d, input)
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
        computed = apply_event(d, event) if d.campaigns.computed_by_event else {}
        return event_hits(d, event) + (attribute_hits(d, computed, now) if computed else [])
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
    elif isinstance(input, Devices):
        if input.action == "remove":
            state.devices.pop(input.device_id, None)
        else:
            known = state.devices.get(input.device_id) or Device()
            state.devices[input.device_id] = Device(
                platform=input.platform or known.platform,
                last_used=input.last_used if input.last_used is not None else known.last_used,
                attributes={**known.attributes, **input.attributes},
            )
    elif isinstance(input, SegmentMembership):
        if input.member and input.segment not in state.segments:
            state.segments[input.segment] = now
            return segment_hits(d, [input.segment], now)
        if not input.member:
            state.segments.pop(input.segment, None)
    elif isinstance(input, Absorb):
        fold(d, PersonState.model_validate(input.state), now)
    elif isinstance(input, BroadcastSend):
        send_broadcast(d, input, now)
    return []


def _adopt_anonymous(d: Decision, input: Identify) -> None:
    """Ask the anonymous person's partition, once, to hand their events over to this person."""
    assert input.anonymous_id is not None
    anonymous = anonymous_person(input.anonymous_id)
    if anonymous == d.state.person or anonymous in d.state.merged_ids:
        return
    d.state.merged_ids.append(anonymous)
    d.commands.append(EmitInput(input=MergeInto(person=anonymous, at=input.at, into=d.state.person)))


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
