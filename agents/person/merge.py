"""Merging two people: fold a secondary's state into the primary's (Customer.io's rules).

The primary wins attribute conflicts; histories interleave by time and are bounded again;
totals, event indexes, entries and computed values add up; the secondary's running journeys
carry on unless the primary runs the same campaign. An anonymous secondary never ran journeys:
its events become the known person's, and those recent enough start campaigns now, as
Customer.io does when an anonymous visitor is identified. Pure: both states in, the primary
changed in place.
"""

from __future__ import annotations

import heapq

from agents.person.computed import combine, mirror
from agents.person.decision import Decision
from agents.person.dedup import merge_seen
from agents.person.event_index import backfill
from agents.person.state_codec import encode_event, events
from agents.person.triggers import Hit, event_hits
from schemas.commands import JourneyEvent
from schemas.inputs import is_anonymous
from schemas.person import EntryRecord, EventTotals, MatchIndex, PersonState


def _earlier(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else min(a, b)


def _later(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else max(a, b)


def fold(d: Decision, secondary: PersonState, t: float) -> list[Hit]:
    """Fold `secondary` into `d.state` (the primary); return the campaigns its events start now."""
    state, config = d.state, d.config
    state.attributes = {**secondary.attributes, **state.attributes}
    if state.email is None:
        state.email = secondary.email
    state.first_seen = min(state.first_seen, secondary.first_seen)
    # Either one's opt-out stands: merging must never re-subscribe anybody.
    state.suppressed = state.suppressed or secondary.suppressed
    state.unsubscribed = state.unsubscribed or secondary.unsubscribed

    ours, theirs = events(state), events(secondary)
    # Indexes first, from each side's own record (a side that lacks a key is backfilled).
    for spec in d.campaigns.match_specs:
        a = state.matches.get(spec.key) or backfill(spec, ours, state.totals.get(spec.event), None)
        b = secondary.matches.get(spec.key) or backfill(
            spec, theirs, secondary.totals.get(spec.event), None
        )
        times = list(heapq.merge(a.times, b.times))[-spec.depth :]
        state.matches[spec.key] = MatchIndex(count=a.count + b.count, times=times)
    for name, totals in secondary.totals.items():
        mine = state.totals.get(name) or EventTotals()
        state.totals[name] = EventTotals(
            count=mine.count + totals.count,
            first_at=_earlier(mine.first_at, totals.first_at),
            last_at=_later(mine.last_at, totals.last_at),
        )
    merged = sorted([*ours, *theirs], key=lambda e: e.at)[-config.history_limit :]
    state.recent = [encode_event(e) for e in merged]
    state.recent_bytes = sum(len(r) for r in state.recent)
    state.seen = merge_seen(state.seen, secondary.seen, config.dedup_limit)

    for segment, since in secondary.segments.items():
        state.segments[segment] = min(since, state.segments.get(segment, since))

    running = {j.campaign for j in state.journeys}
    for journey in secondary.journeys:
        if journey.campaign not in running:
            state.journeys.append(journey)
        elif journey.status == "active":
            # Its metrics row must not stay "in progress" forever.
            d.commands.append(
                JourneyEvent(
                    event="exited", person=secondary.person, campaign_id=journey.campaign,
                    campaign_version=journey.version, journey_id=journey.id, at=t,
                    reason=f"merged into {state.person}, who runs this campaign already",
                )
            )
    for campaign, entry in secondary.entries.items():
        ours_entry = state.entries.get(campaign)
        state.entries[campaign] = (
            entry if ours_entry is None
            else EntryRecord(count=ours_entry.count + entry.count, last_at=max(ours_entry.last_at, entry.last_at))
        )

    known = {m.id for m in state.messages}
    messages = state.messages + [m for m in secondary.messages if m.id not in known]
    state.messages = sorted(messages, key=lambda m: m.at)[-config.message_limit :]

    state.devices = {**secondary.devices, **state.devices}
    for attribute_id, value in secondary.computed.items():
        definition = d.campaigns.computed.get(attribute_id)
        if definition is None:
            continue
        combined = combine(definition, state.computed.get(attribute_id), value)
        if combined is not None:
            state.computed[attribute_id] = combined
            mirror(d, attribute_id)
    ids = [*state.merged_ids, secondary.person, *secondary.merged_ids]
    state.merged_ids = list(dict.fromkeys(m for m in ids if m != state.person))
    # Everything may have changed: segments and dates are evaluated afresh.
    d.touched = None
    if not is_anonymous(secondary.person):
        return []
    recent_enough = t - config.anonymous_trigger_window
    return [hit for e in theirs if e.at >= recent_enough for hit in event_hits(d, e)]
