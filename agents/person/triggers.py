"""Which campaigns an input or a moment starts: events, attribute changes, segments, dates."""

from __future__ import annotations

from typing import Any

from agents.person.campaign_set import VersionedCampaign
from agents.person.decision import Decision
from agents.person.timestamps import to_unix
from agents.person.where import matches_where
from schemas.campaigns import DateOffset, DateTrigger, EventTrigger
from schemas.person import Event, TriggerRecord

Hit = tuple[VersionedCampaign, TriggerRecord]


def event_hits(d: Decision, event: Event) -> list[Hit]:
    """Campaigns whose event trigger (name and `where`) this event matches."""
    hits: list[Hit] = []
    for entry in d.campaigns.by_event.get(event.name, []):
        trigger = entry.campaign.trigger
        assert isinstance(trigger, EventTrigger)
        if matches_where(event.data, trigger.where):
            record = TriggerRecord(kind="event", name=event.name, data=dict(event.data), at=event.at)
            hits.append((entry, record))
    return hits


def attribute_hits(d: Decision, changed: dict[str, tuple[Any, Any]], t: float) -> list[Hit]:
    """Campaigns triggered by a change of one of these attributes (name -> (old, new))."""
    hits: list[Hit] = []
    for name, (old, new) in changed.items():
        for entry in d.campaigns.by_attribute.get(name, []):
            data = {"attribute": name, "from": old, "to": new}
            hits.append((entry, TriggerRecord(kind="attribute_changed", data=data, at=t)))
    return hits


def segment_hits(d: Decision, entered: list[str], t: float) -> list[Hit]:
    """Campaigns triggered by entering these segments."""
    return [
        (entry, TriggerRecord(kind="segment", data={"segment": segment}, at=t))
        for segment in entered
        for entry in d.campaigns.by_segment.get(segment, [])
    ]


def date_moment(trigger: DateTrigger, attributes: dict[str, Any]) -> float | None:
    """The instant a date trigger names for these attributes, or None when unknown."""
    spec = trigger.date
    if isinstance(spec, DateOffset):
        base = to_unix(attributes.get(spec.attribute))
        return None if base is None else base + spec.offset
    start, end = to_unix(attributes.get(spec.from_)), to_unix(attributes.get(spec.to))
    if start is None or end is None:
        return None
    return start + (end - start) * spec.at / 100.0


def due_date_hits(d: Decision, t: float) -> list[Hit]:
    """Date triggers whose armed moment has come by `t`; each fires once and is disarmed."""
    hits: list[Hit] = []
    moments = d.state.date_moments
    for entry in d.campaigns.dated:
        moment = moments.get(entry.id)
        if moment is not None and moment <= t:
            del moments[entry.id]
            trigger = entry.campaign.trigger
            assert isinstance(trigger, DateTrigger)
            data = {"date": trigger.date.model_dump(by_alias=True, mode="json"), "moment": moment}
            hits.append((entry, TriggerRecord(kind="date", data=data, at=moment)))
    return hits


def arm_dates(d: Decision, t: float) -> None:
    """Recompute each date trigger's moment: armed while in the future, moved when it changes.

    A moment already past when it becomes known (or moves into the past) is not armed, so it
    never fires. Only an attribute a date trigger reads (or a fresh evaluation) can move one.
    """
    if d.touched is not None and not any(
        ("attribute", name) in d.touched for name in d.campaigns.date_attributes
    ):
        return
    armed: dict[str, float] = {}
    for entry in d.campaigns.dated:
        trigger = entry.campaign.trigger
        assert isinstance(trigger, DateTrigger)
        moment = date_moment(trigger, d.state.attributes)
        if moment is not None and moment > t:
            armed[entry.id] = moment
    d.state.date_moments = armed
