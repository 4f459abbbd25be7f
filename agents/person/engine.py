"""`decide`: the pure decision core. One person's state and one input in; new state and commands out.

No I/O and no wall clock: `now` is an argument. Every decision first fires the person's timers
that are due by `now`, in due order and each at its own due time (so a late wake, or an input
that overtakes one, changes nothing), then applies the input, then settles: segments, date
triggers, journeys. Timers are data: `state.timers` is recomputed at the end of every decision.

`decide` takes ownership of the state it is given: it changes it in place and returns it, so
the shell pays no copy per input. A caller that needs the state as it was keeps its own copy
(`agents/person/shell.py` rebuilds a person from the last checkpoint when `decide` raises).

Only what an input can affect is evaluated: segments that read what it touched (or whose flip
time came), date triggers when an attribute they read changed, the event indexes its event
feeds. A person last evaluated with another campaign set is evaluated afresh once.
"""

from __future__ import annotations

from typing import Any

from agents.person.broadcasts import send_broadcast
from agents.person.campaign_set import CampaignSet
from agents.person.computed import apply_event
from agents.person.conditions import earliest
from agents.person.config import EngineConfig
from agents.person.decision import Decision
from agents.person.dedup import remember, seen_before
from agents.person.event_index import backfill, track_event
from agents.person.history import add_totals, remember_event
from agents.person.journeys import advance_journey, end_journey, keep_journey, start_journey
from agents.person.merge import fold
from agents.person.read_models import Before, erased, read_model_commands
from agents.person.segments import update_segments
from agents.person.state_codec import events, state_from_builtins, state_to_builtins
from agents.person.step_paths import step_at
from agents.person.triggers import Hit, arm_dates, attribute_hits, due_date_hits, event_hits, segment_hits
from schemas.campaigns import TimeWindowStep, WaitStep, WaitUntilStep
from schemas.commands import Command, EmitInput, JourneyEvent
from schemas.inputs import (
    NEXT_TIMER,
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
    is_anonymous,
)
from schemas.person import Device, Event, PersonState

_DEFAULT_CONFIG = EngineConfig()

# Inputs that only mean something for a person who already exists.
_NEEDS_PERSON = (Wake, Delivery, Reevaluate, MergeInto, Unsubscribe, BroadcastSend)
# The timer that ends an anonymous person's forwarding record.
_FORWARD_TIMER = "forward"


def decide(
    state: PersonState | None,
    input: Input,
    campaigns: CampaignSet,
    now: float,
    config: EngineConfig = _DEFAULT_CONFIG,
    input_data: dict[str, Any] | None = None,
) -> tuple[PersonState | None, list[Command]]:
    """Apply one input to one person at `now`; a None state back means the person is erased.

    `input_data` is the input as it arrived (JSON), kept on its activity line; without it the
    input is dumped again.
    """
    if isinstance(input, Delete):
        return None, _leave_journeys(state, now, "person deleted") + [erased(input.person, now)]
    if state is not None and state.forward_to is not None:
        if now < (state.forward_until or 0.0):
            return state, _forward(state, input)
        state = None  # the forwarding window closed: the id is free again
    if state is None and (
        isinstance(input, _NEEDS_PERSON) or (isinstance(input, Identify) and input.update_only)
    ):
        # Outcomes, wakes, merges and unsubscribes for a person who doesn't exist (any more)
        # change nothing; neither does an identify marked `_update` (update, never create).
        return None, []
    if isinstance(input, MergeInto):
        assert state is not None
        return _merge_into(state, input, now, config)
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
    before = Before.of(state)
    is_new = state is None
    if state is None:
        state = PersonState(person=input.person, first_seen=min(now, input.at))
    d = Decision(state=state, campaigns=campaigns, config=config, input=input)
    if is_new or state.evaluated != campaigns.fingerprint:
        d.touched = None
        if not is_new:  # someone new has no events: every index is empty
            _refresh_indexes(d)
    if is_anonymous(state.person):
        # An anonymous visitor's events are kept for when they are identified; they never
        # enter journeys, join segments or get email (Customer.io's rule).
        _apply(d, input, now, is_new)
    else:
        horizon = now
        if isinstance(input, Wake) and _wakes_something(state, input):
            # A valid wake fires its timers even if this worker's clock lags the scanner's.
            horizon = max(now, input.due)
        _catch_up(d, horizon)
        hits = _apply(d, input, now, is_new)
        _settle(d, now, hits)
    _refresh_timers(d, now)
    state.evaluated = campaigns.fingerprint
    d.commands.extend(
        read_model_commands(
            before, d.state, input, d.commands, now, input_data=input_data, trimmed=d.trimmed
        )
    )
    return d.state, d.commands


def _wakes_something(state: PersonState, wake: Wake) -> bool:
    """Whether the wake's timer (or, for NEXT_TIMER, any timer due by its time) is still set."""
    if wake.timer_id == NEXT_TIMER:
        return any(due <= wake.due for due in state.timers.values())
    return state.timers.get(wake.timer_id) == wake.due


def _is_manual(campaigns: CampaignSet, segment_id: str) -> bool:
    segment = campaigns.segments.get(segment_id)
    return segment is not None and segment.manual


def _refresh_indexes(d: Decision) -> None:
    """Bring the exact event indexes to the loaded conditions: backfill new ones, drop unused."""
    state, specs = d.state, d.campaigns.match_specs
    wanted = {spec.key for spec in specs}
    for key in [k for k in state.matches if k not in wanted]:
        del state.matches[key]
    missing = [
        s for s in specs
        if s.event in state.totals  # never performed: nothing to backfill
        and (
            s.key not in state.matches
            or len(state.matches[s.key].times) < min(s.depth, state.matches[s.key].count)
        )
    ]
    if not missing:
        return
    recent = events(state)
    for spec in missing:
        state.matches[spec.key] = backfill(
            spec, recent, state.totals.get(spec.event), state.matches.get(spec.key)
        )


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


def _forward(state: PersonState, input: Input) -> list[Command]:
    """Pass an anonymous id's late event on to the person it was merged into."""
    assert state.forward_to is not None
    if isinstance(input, Track):
        return [EmitInput(input=input.model_copy(update={"person": state.forward_to}))]
    return []


def _merge_into(
    state: PersonState, input: MergeInto, now: float, config: EngineConfig
) -> tuple[PersonState | None, list[Command]]:
    """Hand this (secondary) person over to `input.into`, then erase them here.

    An anonymous id keeps a small forwarding record for a few minutes, so events for it still
    in flight reach the known person too.
    """
    if input.into == state.person:
        return state, []
    commands: list[Command] = []
    if not state.suppressed:
        handed = state_to_builtins(state)
        for shell_field in ("timers", "last_position", "clock"):
            handed.pop(shell_field, None)
        absorb = Absorb(person=input.into, at=input.at, source=state.person, state=handed)
        commands.append(EmitInput(input=absorb))
    commands.append(erased(state.person, now))
    if not is_anonymous(state.person) or config.anonymous_forward_seconds <= 0:
        return None, commands
    until = now + config.anonymous_forward_seconds
    forward = PersonState(
        person=state.person, first_seen=state.first_seen, forward_to=input.into,
        forward_until=until, timers={_FORWARD_TIMER: until},
    )
    return forward, commands


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
        _refresh_timers(d, due)
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
                d.touch("attribute", name)
        if "email" in input.attributes:
            email = input.attributes["email"]
            state.email = email if isinstance(email, str) else None
        if input.anonymous_id is not None:
            _adopt_anonymous(d, input)
        # The identify that creates a person sets attributes; it doesn't change them.
        return [] if is_new else attribute_hits(d, changed, now)
    if isinstance(input, Track):
        return _track(d, input, now)
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
            d.touch("segment", input.segment)
            return segment_hits(d, [input.segment], now)
        if not input.member and input.segment in state.segments:
            state.segments.pop(input.segment, None)
            d.touch("segment", input.segment)
    elif isinstance(input, Absorb):
        return fold(d, state_from_builtins(input.state), now)
    elif isinstance(input, BroadcastSend):
        send_broadcast(d, input, now)
    elif isinstance(input, Reevaluate):
        d.touched = None
    return []


def _track(d: Decision, input: Track, now: float) -> list[Hit]:
    state, config = d.state, d.config
    if input.event_id is not None:
        if seen_before(state.seen, input.event_id, now, config.dedup_window_days):
            return []
        state.seen = remember(
            state.seen, input.event_id, now, config.dedup_limit, config.dedup_window_days
        )
    event = Event(
        name=input.name, at=input.at, data=dict(input.data), type=input.type, event_id=input.event_id
    )
    add_totals(state, event.name, event.at)
    specs = d.campaigns.specs_by_event.get(event.name)
    if specs:
        track_event(state, event, specs)
    trimmed = remember_event(state, event, config)
    d.trimmed.events += trimmed.events
    d.trimmed.properties = d.trimmed.properties or trimmed.properties
    d.touch("event", event.name)
    computed = apply_event(d, event) if d.campaigns.computed_by_event else {}
    if is_anonymous(state.person):
        return []
    return event_hits(d, event) + (attribute_hits(d, computed, now) if computed else [])


def _adopt_anonymous(d: Decision, input: Identify) -> None:
    """Ask the anonymous person's partition, once, to hand their events over to this person."""
    assert input.anonymous_id is not None
    anonymous = anonymous_person(input.anonymous_id)
    if anonymous == d.state.person or anonymous in d.state.merged_ids:
        return
    d.state.merged_ids.append(anonymous)
    d.commands.append(EmitInput(input=MergeInto(person=anonymous, at=input.at, into=d.state.person)))


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
            d.touch("message", record.template)
            return


def _settle(d: Decision, t: float, hits: list[Hit]) -> None:
    """Bring everything to `t`: segments, date triggers, running journeys, new journeys."""
    for _ in range(d.config.max_rounds):
        d.changed = {}
        hits = hits + segment_hits(d, update_segments(d, t), t) + due_date_hits(d, t)
        _advance_journeys(d, t)
        for entry, trigger in hits:
            start_journey(d, entry, trigger, t)
        arm_dates(d, t)
        d.touched = set()
        if not d.changed:
            break
        # A `set` step changed attributes: segments and attribute_changed campaigns react.
        for name in d.changed:
            d.touch("attribute", name)
        hits = attribute_hits(d, d.changed, t)


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
        due = earliest(journey.resume_at if journey.status == "active" else None, journey.watch_at)
        if due is not None:
            timers[f"journey:{journey.id}"] = due
    state.journeys = kept
    for segment_id, flip in state.segment_flips.items():
        timers[f"segment:{segment_id}"] = flip
    for campaign_id, moment in state.date_moments.items():
        timers[f"date:{campaign_id}"] = moment
    if state.forward_until is not None:
        timers[_FORWARD_TIMER] = state.forward_until
    state.timers = timers
