"""Person state: everything the decision core remembers about one person.

The record is decoded and encoded on the hot path (once per checkpoint for every person a
checkpoint touches), so it is a set of msgspec Structs stored as MessagePack, chosen by
measurement (docs/performance.md): about ten times cheaper than the pydantic models it replaced.
The bulky part, the recent events with their properties, is kept as raw encoded events
(`recent`) that are decoded only when a template, a merge or a new condition reads them.
`agents/person/state_codec.py` owns the encoding.

Everything a condition reads is kept exact however long the history grows: lifetime totals per
event name (`totals`) and, per (event, where) a loaded condition uses, the matching count and the
latest matching times it needs (`matches`); see `agents/person/event_index.py`.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec
from msgspec import Struct, field

JourneyStatus = Literal["active", "completed", "exited"]


class Event(Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """One event as the person performed it, properties kept."""

    name: str
    at: float
    data: dict[str, Any] = {}
    type: str = "event"
    event_id: str | None = None


class EventTotals(Struct, kw_only=True, omit_defaults=True, gc=False):
    """Lifetime figures for one event name."""

    count: int = 0
    first_at: float | None = None
    last_at: float | None = None


class MatchIndex(Struct, kw_only=True, omit_defaults=True, gc=False):
    """The exact answer to one (event, where) a loaded condition reads.

    `count` is every matching event ever; `times` the latest matching event times, ascending,
    as many as the deepest condition on this key needs (a `count: {gte: 3}` inside a window
    needs the last 3).
    """

    count: int = 0
    times: list[float] = []


class TriggerRecord(Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """What started a journey: the event (name and properties) or a synthetic one for
    date, segment, attribute-change and broadcast triggers."""

    kind: Literal["event", "date", "segment", "attribute_changed"] = "event"
    # The event's name (None for the other kinds, so templates see no `event_name`).
    name: str | None = None
    data: dict[str, Any] = {}
    at: float


class JourneyState(Struct, kw_only=True, omit_defaults=True, gc=False):
    """One run of one campaign version for this person."""

    id: str
    campaign: str
    version: str
    entered_at: float
    trigger: TriggerRecord
    status: JourneyStatus = "active"
    # Path of the next step to run: step index, then (inside branch/split/random) the arm
    # index and the step index inside it, and so on. Meaningless once the journey ended.
    position: list[int] = field(default_factory=lambda: [0])
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


class EntryRecord(Struct, kw_only=True, omit_defaults=True, gc=False):
    """How often and when this person last entered a campaign (any version): re-entry rules."""

    count: int = 0
    last_at: float


class MessageRecord(Struct, kw_only=True, omit_defaults=True, gc=False):
    """A message the engine asked to send, and what delivery reported about it since."""

    id: str
    template: str
    campaign: str | None = None
    journey: str | None = None
    at: float
    # "sent" once asked for; delivery outcomes add delivered/opened/clicked/bounced/failed...
    statuses: list[str] = field(default_factory=lambda: ["sent"])


class Device(Struct, kw_only=True, omit_defaults=True, gc=False):
    """One of the person's devices (push tokens), as the Track API's devices endpoint gives it."""

    platform: str | None = None
    last_used: float | None = None
    attributes: dict[str, Any] = {}


class ComputedValue(Struct, frozen=True, kw_only=True, gc=False):
    """A computed attribute's running value and the time of the event that last changed it."""

    value: Any
    at: float


class PersonState(Struct, kw_only=True, omit_defaults=True, gc=False):
    """All of one person's state. `last_position` and `clock` are the shell's."""

    person: str
    first_seen: float
    attributes: dict[str, Any] = {}
    email: str | None = None
    suppressed: bool = False
    unsubscribed: bool = False
    # Event name -> lifetime totals (never forgotten).
    totals: dict[str, EventTotals] = {}
    # Condition key (agents/person/event_index.py) -> exact matches of that (event, where).
    matches: dict[str, MatchIndex] = {}
    # The most recent events, oldest first, each a raw encoded `Event`, bounded by count and
    # bytes: for templates, merges and the backfill of a newly loaded condition.
    recent: list[msgspec.Raw] = []
    # Their encoded size, kept so bounding them costs nothing per event.
    recent_bytes: int = 0
    # Producer event ids seen lately, for deduplication (agents/person/dedup.py).
    seen: bytes = b""
    # Segment id -> when the person entered it.
    segments: dict[str, float] = {}
    # Segment id -> the next instant its membership could flip without an input.
    segment_flips: dict[str, float] = {}
    journeys: list[JourneyState] = []
    # Campaign id -> entries, for re-entry rules.
    entries: dict[str, EntryRecord] = {}
    # Campaign id -> the future moment its date trigger fires at (known while in the future).
    date_moments: dict[str, float] = {}
    # Messages asked for, oldest first, bounded per template and in all.
    messages: list[MessageRecord] = []
    # Timer id -> due Unix seconds. Derived from the rest after every decision; the shell
    # indexes these and sends back a Wake when the earliest falls due.
    timers: dict[str, float] = {}
    # Device id -> device (push tokens).
    devices: dict[str, Device] = {}
    # Computed attribute id -> running value, kept per track (mirrored into `attributes`).
    computed: dict[str, ComputedValue] = {}
    # Other ids folded into this person (anonymous ids as `anon:<id>`, merged secondaries).
    merged_ids: list[str] = []
    # The campaign set (CampaignSet.fingerprint) the derived fields above were last fully
    # evaluated with; a different set means segments, dates and indexes are evaluated afresh.
    evaluated: str = ""
    # An anonymous person folded into `forward_to`: events arriving for them until
    # `forward_until` are passed on to the known person (Customer.io merges those too).
    forward_to: str | None = None
    forward_until: float | None = None
    # The shell's replay guard: (offset, index in envelope) of the last input applied. Never
    # touched by the core.
    last_position: tuple[int, int] | None = None
    # The shell's logical clock: the `now` of the last decision, so it never runs backwards.
    # Never touched by the core.
    clock: float | None = None
