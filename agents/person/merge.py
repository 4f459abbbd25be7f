"""Merging two people: fold a secondary's state into the primary's (Customer.io's rules).

The primary wins attribute conflicts; histories interleave by time and are bounded again;
aggregates, entries and computed values add up; the secondary's running journeys carry on
unless the primary runs the same campaign. Pure: both states in, the primary changed in place.
"""

from __future__ import annotations

from agents.person.computed import combine, mirror
from agents.person.decision import Decision
from schemas.commands import JourneyEvent
from schemas.history import EventAggregate
from schemas.person import EntryRecord, PersonState


def _min(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else min(a, b)


def _max(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else max(a, b)


def fold(d: Decision, secondary: PersonState, t: float) -> None:
    """Fold `secondary` into `d.state` (the primary); timers are derived again when settling."""
    state, config = d.state, d.config
    state.attributes = {**secondary.attributes, **state.attributes}
    if state.email is None:
        state.email = secondary.email
    state.first_seen = min(state.first_seen, secondary.first_seen)
    # Either one's opt-out stands: merging must never re-subscribe anybody.
    state.suppressed = state.suppressed or secondary.suppressed
    state.unsubscribed = state.unsubscribed or secondary.unsubscribed

    history = state.history
    recent = sorted([*history.recent, *secondary.history.recent], key=lambda e: e.at)
    history.recent = recent[-config.history_limit :]
    for name, theirs in secondary.history.aggregates.items():
        ours = history.aggregates.get(name) or EventAggregate()
        history.aggregates[name] = EventAggregate(
            count=ours.count + theirs.count,
            first_at=_min(ours.first_at, theirs.first_at),
            last_at=_max(ours.last_at, theirs.last_at),
        )
    seen = dict.fromkeys([*secondary.seen_event_ids, *state.seen_event_ids])
    state.seen_event_ids = list(seen)[-config.seen_event_ids_limit :] if config.seen_event_ids_limit else []

    for segment, since in secondary.segments.items():
        state.segments[segment] = min(since, state.segments.get(segment, since))

    running = {j.campaign for j in state.journeys}
    for journey in secondary.journeys:
        if journey.campaign not in running:
            state.journeys.append(journey.model_copy(update={"position": list(journey.position)}))
        elif journey.status == "active":
            # Its metrics row must not stay "in progress" forever.
            d.commands.append(
                JourneyEvent(
                    event="exited", person=secondary.person, campaign_id=journey.campaign,
                    campaign_version=journey.version, journey_id=journey.id, at=t,
                    reason=f"merged into {state.person}, who runs this campaign already",
                )
            )
    for campaign, theirs in secondary.entries.items():
        ours_entry = state.entries.get(campaign)
        state.entries[campaign] = (
            theirs.model_copy() if ours_entry is None
            else EntryRecord(count=ours_entry.count + theirs.count, last_at=max(ours_entry.last_at, theirs.last_at))
        )

    known = {m.id for m in state.messages}
    messages = state.messages + [
        m.model_copy(update={"statuses": list(m.statuses)}) for m in secondary.messages if m.id not in known
    ]
    state.messages = sorted(messages, key=lambda m: m.at)[-config.message_limit :]

    state.devices = {**secondary.devices, **state.devices}
    for attribute_id, theirs in secondary.computed.items():
        definition = d.campaigns.computed.get(attribute_id)
        if definition is None:
            continue
        combined = combine(definition, state.computed.get(attribute_id), theirs)
        if combined is not None:
            state.computed[attribute_id] = combined
            mirror(d, attribute_id)
    merged = [*state.merged_ids, secondary.person, *secondary.merged_ids]
    state.merged_ids = list(dict.fromkeys(m for m in merged if m != state.person))
