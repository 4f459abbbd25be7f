"""The read side as the HTTP API and the CLI answer it: activity, the event catalog, profiles,
campaign metrics and segment membership. Times are Unix seconds, like everywhere else in Nudge."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _ReadModel(BaseModel):
    model_config = ConfigDict(frozen=True)


class ActivityEntry(_ReadModel):
    """One applied input of a person and what it changed (attributes, segments, journeys, messages)."""

    # Grows in arrival order, so it is the cursor for paging (`before`) and following (`after`).
    id: int
    person: str
    at: float
    kind: str
    summary: str
    detail: dict[str, Any] = Field(default_factory=dict)
    # The input itself, as producers write it (None for lines stored before inputs were kept).
    input: dict[str, Any] | None = None


class CatalogRow(_ReadModel):
    """One row of `event_catalog`: an event's property seen with one JSON type.

    Property "" (JSON type "event") is the event itself; its count is the number of events."""

    event: str
    type: str
    property: str
    json_type: str
    first_seen: float
    last_seen: float
    count: int


class PropertyTypes(_ReadModel):
    """A property of an event and each JSON type it was seen with (several means inconsistent data)."""

    name: str
    types: list[str]
    count: int
    first_seen: float
    last_seen: float
    by_type: dict[str, int]


class CatalogEvent(_ReadModel):
    """An event name (of one type: event, page, screen) with its properties."""

    event: str
    type: str
    count: int
    first_seen: float
    last_seen: float
    properties: list[PropertyTypes]


def group_catalog(rows: list[CatalogRow]) -> list[CatalogEvent]:
    """Fold catalog rows into one entry per (event, type), properties sorted by name."""
    events: dict[tuple[str, str], CatalogRow] = {}
    properties: dict[tuple[str, str], dict[str, list[CatalogRow]]] = {}
    for row in rows:
        key = (row.event, row.type)
        if row.property == "":
            events[key] = row
        else:
            properties.setdefault(key, {}).setdefault(row.property, []).append(row)
    out = []
    for key in sorted(set(events) | set(properties)):
        event = events.get(key)
        props = [
            PropertyTypes(
                name=name,
                types=sorted(r.json_type for r in seen),
                count=sum(r.count for r in seen),
                first_seen=min(r.first_seen for r in seen),
                last_seen=max(r.last_seen for r in seen),
                by_type={r.json_type: r.count for r in seen},
            )
            for name, seen in sorted(properties.get(key, {}).items())
        ]
        every = [p.first_seen for p in props] + ([event.first_seen] if event else [])
        last = [p.last_seen for p in props] + ([event.last_seen] if event else [])
        out.append(
            CatalogEvent(
                event=key[0],
                type=key[1],
                count=event.count if event else 0,
                first_seen=min(every),
                last_seen=max(last),
                properties=props,
            )
        )
    return out


class SegmentMembership(_ReadModel):
    """A segment a person is in, and since when."""

    segment: str
    entered_at: float


class SegmentCount(_ReadModel):
    """A segment and how many people are in it now."""

    id: str
    members: int


class SegmentMember(_ReadModel):
    """A person in a segment, and since when."""

    person: str
    entered_at: float


class ProfileMessage(_ReadModel):
    """A message sent (or being sent) to the person, and why the engine decided to send it."""

    message_id: str
    template: str
    campaign_id: str | None
    step: str | None
    status: str
    reason: str
    created_at: float
    sent_at: float | None
    last_error: str | None
    # The status timeline, oldest first: queued, sending, sent, opened, clicked, ...
    timeline: list[dict[str, Any]]


class ProfileJourney(_ReadModel):
    """One journey event of the person: entered, completed, exited or converted."""

    campaign_id: str
    journey_id: str
    event: str
    at: float
    reason: str


class JourneyStatus(_ReadModel):
    """A journey as it stands now: running (where it waits, until when) or ended (how)."""

    journey_id: str
    person: str
    campaign_id: str
    campaign_version: str
    # active, completed or exited.
    status: str
    # The step path it waits at ("1", "2.0.1"), None once ended or when not known.
    position: str | None
    resume_at: float | None
    entered_at: float | None
    ended_at: float | None
    end_reason: str
    converted_at: float | None


class Profile(_ReadModel):
    """A person as the read side knows them."""

    id: str
    # False when only traces are left (activity, messages) and no profile row, e.g. after erasure.
    exists: bool
    email: str | None
    attributes: dict[str, Any]
    suppressed: bool
    unsubscribed: bool
    updated_at: float | None
    segments: list[SegmentMembership]
    journeys: list[ProfileJourney]
    messages: list[ProfileMessage]
    activity: list[ActivityEntry]
    # Every journey as it stands now (campaign, version, current step, next wake-up).
    current_journeys: list[JourneyStatus] = Field(default_factory=list)


class StepMetrics(_ReadModel):
    """Messages of one step of a campaign: all of them, still pending, sent, failed, opened, clicked."""

    step: str | None
    template: str
    total: int
    # Queued or being sent now.
    pending: int
    sent: int
    failed: int
    opened: int
    clicked: int


class CampaignMetrics(_ReadModel):
    """Journeys of one campaign (entered, in progress, completed, exited, converted) and its steps."""

    campaign_id: str
    entered: int = 0
    in_progress: int = 0
    completed: int = 0
    exited: int = 0
    converted: int = 0
    steps: list[StepMetrics] = Field(default_factory=list)


class JourneyMilestone(_ReadModel):
    """A journey's entered, completed, exited or converted, with the step and what caused it."""

    event: str
    at: float
    reason: str
    step: str | None
    detail: dict[str, Any]


class JourneyStep(_ReadModel):
    """One step a journey took: what it did and, for a choice, the condition and values it saw."""

    step: str
    step_kind: str
    at: float
    reason: str
    detail: dict[str, Any]


class JourneyProvenance(_ReadModel):
    """Everything the read side knows of one journey: where it is, its milestones, its steps."""

    journey: JourneyStatus
    milestones: list[JourneyMilestone]
    # In the order taken.
    steps: list[JourneyStep]


class MessageProvenance(_ReadModel):
    """Why a message exists: the message and its timeline, the send command as decided (reason,
    trigger event, the customer as the template saw them), and its journey's provenance."""

    message: ProfileMessage
    campaign_version: str | None
    command: dict[str, Any]
    journey: JourneyProvenance | None


class StepOccupancy(_ReadModel):
    """Journeys of one campaign version waiting at one step now, and the soonest wake-up."""

    campaign_version: str
    position: str | None
    journeys: int
    next_wake_up: float | None


class FlowStep(_ReadModel):
    """One step of a campaign as its flow shows it."""

    step: str
    step_kind: str
    # Journeys at this step now, journeys that took it, journeys that exited at it.
    now: int
    reached: int
    exited: int
    # For a branch, split or random step: journeys per arm taken ("then", "else", "0", ...).
    arms: dict[str, int]


class CampaignFlow(_ReadModel):
    """A campaign's steps with their counts, in step order, and its journeys' totals."""

    campaign_id: str
    steps: list[FlowStep]

