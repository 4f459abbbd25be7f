"""Person state: everything the decision core remembers about one person.

Serialized per person into the `people` table on the hot path, so it stays compact: the
history is bounded, seen event ids and message records are bounded, and finished journeys are
dropped as soon as their goal window closes. Serialize with `model_dump_json(exclude_defaults=True)`
and load with `model_validate_json`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.history import History

JourneyStatus = Literal["active", "completed", "exited"]


class TriggerRecord(BaseModel):
    """What started a journey: the event (name and properties) or a synthetic one for
    date, segment and attribute-change triggers."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["event", "date", "segment", "attribute_changed"] = "event"
    # The event's name (None for the other kinds, so templates see no `event_name`).
    name: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)
    at: float


class JourneyState(BaseModel):
    """One run of one campaign version for this person."""

    id: str
    campaign: str
    version: str
    entered_at: float
    trigger: TriggerRecord
    status: JourneyStatus = "active"
    # Path of the next step to run: step index, then (inside branch/split/random) the arm
    # index and the step index inside it, and so on. Meaningless once the journey ended.
    position: list[int] = Field(default_factory=lambda: [0])
    # When the current wait, time window or wait_until `max` ends.
    resume_at: float | None = None
    # When the current wait_until began (its `max` counts from here).
    waiting_since: float | None = None
    # The next instant an exit, goal or wait_until condition could change its value.
    watch_at: float | None = None
    converted: bool = False
    # Goal window end; a finished journey is kept until then so a late conversion counts.
    goal_until: float | None = None
    ended_at: float | None = None


class EntryRecord(BaseModel):
    """How often and when this person last entered a campaign (any version): re-entry rules."""

    count: int = 0
    last_at: float


class MessageRecord(BaseModel):
    """A message the engine asked to send, and what delivery reported about it since."""

    id: str
    template: str
    campaign: str | None = None
    journey: str | None = None
    at: float
    # "sent" once asked for; delivery outcomes add delivered/opened/clicked/bounced/failed...
    statuses: list[str] = Field(default_factory=lambda: ["sent"])


class Device(BaseModel):
    """One of the person's devices (push tokens), as the Track API's devices endpoint gives it."""

    platform: str | None = None
    last_used: float | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)


class ComputedValue(BaseModel):
    """A computed attribute's running value and the time of the event that last changed it."""

    model_config = ConfigDict(frozen=True)

    value: Any
    at: float


class PersonState(BaseModel):
    """All of one person's state. `timers`, `last_position` and `clock` are the Faust shell's."""

    person: str
    attributes: dict[str, Any] = Field(default_factory=dict)
    email: str | None = None
    first_seen: float
    suppressed: bool = False
    unsubscribed: bool = False
    history: History = Field(default_factory=History)
    # Recent producer event ids, oldest first, for deduplication (bounded).
    seen_event_ids: list[str] = Field(default_factory=list)
    # Segment id -> when the person entered it.
    segments: dict[str, float] = Field(default_factory=dict)
    journeys: list[JourneyState] = Field(default_factory=list)
    # Campaign id -> entries, for re-entry rules.
    entries: dict[str, EntryRecord] = Field(default_factory=dict)
    # Campaign id -> the future moment its date trigger fires at (known while in the future).
    date_moments: dict[str, float] = Field(default_factory=dict)
    messages: list[MessageRecord] = Field(default_factory=list)
    # Timer id -> due Unix seconds. Derived from the rest after every decision; the shell
    # indexes these and sends back a Wake(timer_id, due) when one falls due.
    timers: dict[str, float] = Field(default_factory=dict)
    # Device id -> device (push tokens).
    devices: dict[str, Device] = Field(default_factory=dict)
    # Computed attribute id -> running value, kept per track (mirrored into `attributes`).
    computed: dict[str, ComputedValue] = Field(default_factory=dict)
    # Other ids folded into this person (anonymous ids as `anon:<id>`, merged secondaries).
    merged_ids: list[str] = Field(default_factory=list)
    # The shell's replay guard: (offset, index in envelope) of the last input applied. Never
    # touched by the core.
    last_position: tuple[int, int] | None = None
    # The shell's logical clock: the `now` of the last decision, so it never runs backwards.
    # Never touched by the core.
    clock: float | None = None
