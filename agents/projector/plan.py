"""What a batch of projections amounts to in PostgreSQL rows (pure: no I/O, no clock).

The projector reads Kafka messages of read-model commands (`Activity`, `PersonSnapshot`,
`JourneyEvent`) and turns them into rows, encoded here so that a command Python cannot encode
(a value JSON cannot hold) is refused on its own, before any SQL runs.

Times stay Unix seconds: PostgreSQL converts them (`to_timestamp`), and refuses one it cannot
hold like any other bad value.

A batch is cut into segments at erasures: the rows of a segment are written after its
`erase_first` people are erased, so a person erased and then seen again (re-created) keeps only
what came after the erasure, and rows written before an erasure in the same batch are erased
with everything older.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import orjson
from pydantic import ValidationError

from schemas.commands import Activity, Command, JourneyEvent, PersonSnapshot
from schemas.wire import command_items, decode_command

# What encoding a command can raise: orjson's JSONEncodeError is a TypeError, a string it cannot
# encode a ValueError.
_ENCODING_ERRORS = (TypeError, ValueError)


@dataclass(frozen=True)
class Projection:
    """One command read from the projections topic, and where it came from."""

    command: Command
    # "partition:offset" of its Kafka message, and its index in that message.
    source: str
    index: int
    # The command's JSON item as it arrived, and, for an Activity, its identity (`fingerprint`).
    item: Any
    fingerprint: bytes = b""

    def text(self) -> str:
        """The command as JSON, for a dead letter."""
        return _item_text(self.item, "")


@dataclass(frozen=True)
class Refusal:
    """A message or command the projector will not write, and why (for the dead-letter topic)."""

    reason: str
    source: str
    # The refused command as JSON, or the whole message when it could not be decoded.
    value: str
    person: str | None = None
    index: int | None = None

    def letter(self, source_topic: str, at: float) -> bytes:
        """The dead-letter record: the shape the person agent uses, plus where it sat.

        Encoded by the standard library with ASCII escapes: a refused value may hold text
        (lone surrogates) that orjson and pydantic refuse to encode.
        """
        return json.dumps({
            "reason": self.reason,
            "source_topic": source_topic,
            "source": self.source,
            "index": self.index,
            "value": self.value,
            "at": at,
        }).encode()


def fingerprint(canonical: bytes, occurrence: int) -> bytes:
    """A command's identity: its canonical JSON and how many identical ones preceded it in its
    message. A replayed or re-decided projection gets the same fingerprint; two identical
    inputs in one envelope do not collapse into one."""
    return hashlib.blake2b(canonical + b"\x1f%d" % occurrence, digest_size=16).digest()


def decode_message(raw: bytes | None, source: str) -> tuple[list[Projection], list[Refusal]]:
    """The commands of one Kafka message; a message that is not JSON, or an item that is not a
    command, is refused with the parser's reason (the other items still count)."""
    try:
        items = command_items(raw or b"")
    except orjson.JSONDecodeError as exc:
        text = (raw or b"").decode("utf-8", "replace")
        return [], [Refusal(f"not a JSON command message: {exc}", source, text)]
    projections: list[Projection] = []
    refusals: list[Refusal] = []
    seen: Counter[bytes] = Counter()
    for index, item in enumerate(items):
        try:
            command = decode_command(item)
            # Only activity lines need an identity: every other row has a natural key.
            canonical = (
                orjson.dumps(item, option=orjson.OPT_SORT_KEYS) if command.kind == "activity" else b""
            )
        except (ValidationError, *_ENCODING_ERRORS) as exc:
            person = item.get("person") if isinstance(item, dict) else None
            refusals.append(Refusal(
                f"not a read-model command: {exc}", source,
                _item_text(item, (raw or b"").decode("utf-8", "replace")),
                person if isinstance(person, str) else None, index,
            ))
            continue
        if not canonical:
            projections.append(Projection(command, source, index, item))
            continue
        occurrence = seen[canonical]
        seen[canonical] += 1
        projections.append(
            Projection(command, source, index, item, fingerprint(canonical, occurrence))
        )
    return projections, refusals


def _item_text(item: Any, fallback: str) -> str:
    try:
        return orjson.dumps(item).decode()
    except _ENCODING_ERRORS:
        return fallback


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


def json_type(value: Any) -> str:
    """The JSON type name of a property value, as the event catalog records it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "object"
    return "array"


# (event, type, property, json type): property '' is the event itself.
CatalogKey = tuple[str, str, str, str]


@dataclass(frozen=True)
class PersonRow:
    person: str
    email: str | None
    attributes: str
    suppressed: bool
    unsubscribed: bool
    at: float
    segments: dict[str, float]


@dataclass(frozen=True)
class ActivityRow:
    person: str
    at: float
    kind: str
    summary: str
    detail: str
    input: str | None
    fingerprint: bytes
    catalog: tuple[CatalogKey, ...]


@dataclass(frozen=True)
class JourneyEventRow:
    journey_id: str
    event: str
    person: str
    campaign_id: str
    campaign_version: str
    at: float
    reason: str
    step: str | None
    detail: str


@dataclass(frozen=True)
class JourneyStepRow:
    journey_id: str
    step: str
    step_kind: str
    person: str
    campaign_id: str
    campaign_version: str
    at: float
    reason: str
    detail: str


@dataclass
class JourneyNow:
    """A journey's current row, folded from its events in this segment."""

    journey_id: str
    person: str
    campaign_id: str
    campaign_version: str
    updated_at: float
    status: str = "active"
    position: str | None = None
    resume_at: float | None = None
    entered_at: float | None = None
    ended_at: float | None = None
    end_reason: str = ""
    converted_at: float | None = None
    # False when only a conversion was seen: status and position are left as stored.
    moved: bool = False


@dataclass
class Segment:
    """Rows to write after erasing `erase_first`; within it, later rows supersede earlier ones."""

    erase_first: list[str] = field(default_factory=list)
    people: dict[str, PersonRow] = field(default_factory=dict)
    activity: list[ActivityRow] = field(default_factory=list)
    fingerprints: set[bytes] = field(default_factory=set)
    journey_events: dict[tuple[str, str], JourneyEventRow] = field(default_factory=dict)
    journey_steps: dict[tuple[str, str], JourneyStepRow] = field(default_factory=dict)
    journeys: dict[str, JourneyNow] = field(default_factory=dict)
    # Everyone with a row in this segment.
    touched: set[str] = field(default_factory=set)

    def empty(self) -> bool:
        """Nothing to erase and nothing to write."""
        return not (self.erase_first or self.touched)


def plan_batch(projections: list[Projection]) -> tuple[list[Segment], list[Refusal]]:
    """Fold projections, in order, into segments of rows; refuse the ones that cannot be encoded."""
    segments = [Segment()]
    refusals: list[Refusal] = []
    for projection in projections:
        command = projection.command
        if isinstance(command, PersonSnapshot) and command.deleted:
            if command.person in segments[-1].touched:
                # Rows of theirs are already in this segment: erase after them.
                segments.append(Segment())
            if command.person not in segments[-1].erase_first:
                segments[-1].erase_first.append(command.person)
            continue
        try:
            _add(segments[-1], command, projection)
        except Exception as exc:
            refusals.append(Refusal(
                f"cannot be written to the read model: {exc!r}", projection.source,
                projection.text(), command.person, projection.index,
            ))
    return [s for s in segments if not s.empty()], refusals


def _add(segment: Segment, command: Command, projection: Projection) -> None:
    """Encode one command's rows first, then add them: a failure leaves the segment unchanged."""
    if isinstance(command, PersonSnapshot):
        row = PersonRow(
            command.person, command.email, _json(command.attributes), command.suppressed,
            command.unsubscribed, command.at, dict(command.segments),
        )
        segment.people[command.person] = row
    elif isinstance(command, Activity):
        # The same projection twice in a batch (re-decided after a crash) is one line.
        if projection.fingerprint not in segment.fingerprints:
            segment.activity.append(_activity_row(command, projection.fingerprint))
            segment.fingerprints.add(projection.fingerprint)
    elif isinstance(command, JourneyEvent):
        _journey_event(segment, command)
    else:
        raise TypeError(f"{command.kind} is not a read-model command")
    segment.touched.add(command.person)


def _activity_row(command: Activity, print_: bytes) -> ActivityRow:
    catalog: list[CatalogKey] = []
    if command.event_name is not None:
        kind = command.event_type or "event"
        catalog.append((command.event_name, kind, "", "event"))
        catalog += [
            (command.event_name, kind, name, json_type(value))
            for name, value in (command.event_data or {}).items()
        ]
    return ActivityRow(
        command.person, command.at, command.input_kind, command.summary,
        _json(command.changes), None if command.input is None else _json(command.input),
        print_, tuple(catalog),
    )


def _journey_event(segment: Segment, event: JourneyEvent) -> None:
    at, resume_at = event.at, event.resume_at
    detail = _json(event.detail)
    if event.event == "step":
        step = event.step or ""
        segment.journey_steps[(event.journey_id, step)] = JourneyStepRow(
            event.journey_id, step, event.step_kind or "", event.person, event.campaign_id,
            event.campaign_version, at, event.reason, detail,
        )
    else:
        segment.journey_events.setdefault((event.journey_id, event.event), JourneyEventRow(
            event.journey_id, event.event, event.person, event.campaign_id,
            event.campaign_version, at, event.reason, event.step, detail,
        ))
    now = segment.journeys.get(event.journey_id)
    if now is None:
        now = segment.journeys[event.journey_id] = JourneyNow(
            event.journey_id, event.person, event.campaign_id, event.campaign_version, at
        )
    now.updated_at = max(now.updated_at, at)
    if event.event == "converted":
        now.converted_at = now.converted_at or at
        return
    now.moved = True
    now.position, now.resume_at = event.position, resume_at
    if event.event == "entered":
        now.entered_at = now.entered_at or at
    elif event.event in ("completed", "exited"):
        now.status, now.ended_at, now.end_reason = event.event, at, event.reason
        now.position = now.resume_at = None


def catalog_counts(rows: list[ActivityRow]) -> dict[CatalogKey, tuple[float, float, int]]:
    """First seen, last seen and count per catalog key over these activity rows."""
    counts: dict[CatalogKey, tuple[float, float, int]] = {}
    for row in rows:
        for key in row.catalog:
            first, last, count = counts.get(key, (row.at, row.at, 0))
            counts[key] = (min(first, row.at), max(last, row.at), count + 1)
    return counts
