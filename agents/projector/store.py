"""Write read models to PostgreSQL: profiles, segment members, activity, the event catalog, erasure.

One transaction per batch. Replays are harmless except for `activity`, which is append-only:
a batch re-delivered after a crash inserts its activity rows again (duplicates, never losses).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import asyncpg
import orjson

from schemas.commands import Activity, Command, PersonSnapshot


def _ts(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=timezone.utc)


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


@dataclass
class BatchPlan:
    """What one batch of projections amounts to, per person, in the order that matters."""

    # People to erase before anything else of theirs in this batch is written.
    erase: set[str] = field(default_factory=set)
    # The last snapshot per person (earlier ones in the batch are superseded).
    snapshots: dict[str, PersonSnapshot] = field(default_factory=dict)
    activity: list[Activity] = field(default_factory=list)
    # (event, type, property, json type) -> [first, last, count]
    catalog: dict[tuple[str, str, str, str], list[float]] = field(default_factory=dict)


def plan_batch(commands: list[Command]) -> BatchPlan:
    """Fold a batch into erasures, last snapshots, activity rows and catalog counts (pure)."""
    plan = BatchPlan()
    for command in commands:
        if isinstance(command, PersonSnapshot):
            if command.deleted:
                plan.erase.add(command.person)
                plan.snapshots.pop(command.person, None)
                plan.activity = [a for a in plan.activity if a.person != command.person]
            else:
                plan.snapshots[command.person] = command
        elif isinstance(command, Activity):
            plan.activity.append(command)
            if command.event_name is not None:
                kind = command.event_type or "event"
                _count(plan, (command.event_name, kind, "", "event"), command.at)
                for name, value in (command.event_data or {}).items():
                    _count(plan, (command.event_name, kind, name, json_type(value)), command.at)
    return plan


def _count(plan: BatchPlan, key: tuple[str, str, str, str], at: float) -> None:
    entry = plan.catalog.get(key)
    if entry is None:
        plan.catalog[key] = [at, at, 1]
    else:
        entry[0], entry[1], entry[2] = min(entry[0], at), max(entry[1], at), entry[2] + 1


_ERASE = [
    "DELETE FROM people WHERE person = ANY($1::text[])",
    "DELETE FROM segment_members WHERE person = ANY($1::text[])",
    "DELETE FROM activity WHERE person = ANY($1::text[])",
    # Unsent mail to an erased person must not go out; sent rows keep only what isn't personal.
    """UPDATE outbox SET status = 'failed', last_error = 'person erased', updated_at = now()
       WHERE person = ANY($1::text[]) AND status IN ('queued', 'sending')""",
    """UPDATE outbox SET to_address = NULL,
              command = (command - 'to' - 'context') || '{"to": null}'::jsonb
       WHERE person = ANY($1::text[]) AND (to_address IS NOT NULL OR command ? 'context')""",
]

_UPSERT_PEOPLE = """
INSERT INTO people (person, email, attributes, suppressed, unsubscribed, updated_at)
SELECT u.p, u.e, u.a::jsonb, u.s, u.un, u.t
FROM unnest($1::text[], $2::text[], $3::text[], $4::bool[], $5::bool[], $6::timestamptz[])
     AS u(p, e, a, s, un, t)
ON CONFLICT (person) DO UPDATE SET
    email = EXCLUDED.email, attributes = EXCLUDED.attributes, suppressed = EXCLUDED.suppressed,
    unsubscribed = EXCLUDED.unsubscribed, updated_at = EXCLUDED.updated_at
WHERE people.updated_at <= EXCLUDED.updated_at
"""

_LEAVE_SEGMENTS = """
DELETE FROM segment_members m
USING unnest($1::text[], $2::text[]) AS u(p, segs)
WHERE m.person = u.p AND NOT (m.segment = ANY(string_to_array(u.segs, E'\\x1f')))
"""

_JOIN_SEGMENTS = """
INSERT INTO segment_members (segment, person, entered_at)
SELECT u.s, u.p, u.t FROM unnest($1::text[], $2::text[], $3::timestamptz[]) AS u(s, p, t)
ON CONFLICT (segment, person) DO UPDATE SET entered_at = EXCLUDED.entered_at
WHERE segment_members.entered_at <> EXCLUDED.entered_at
"""

_INSERT_ACTIVITY = """
INSERT INTO activity (person, at, kind, summary, detail)
SELECT u.p, u.t, u.k, u.s, u.d::jsonb
FROM unnest($1::text[], $2::timestamptz[], $3::text[], $4::text[], $5::text[]) AS u(p, t, k, s, d)
"""

_UPSERT_CATALOG = """
INSERT INTO event_catalog (event, type, property, json_type, first_seen, last_seen, count)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[],
                     $6::timestamptz[], $7::bigint[])
ON CONFLICT (event, type, property, json_type) DO UPDATE SET
    first_seen = least(event_catalog.first_seen, EXCLUDED.first_seen),
    last_seen = greatest(event_catalog.last_seen, EXCLUDED.last_seen),
    count = event_catalog.count + EXCLUDED.count
"""


async def write_batch(pool: asyncpg.Pool, commands: list[Command]) -> BatchPlan:
    """Apply one batch of Activity and PersonSnapshot commands in one transaction."""
    plan = plan_batch(commands)
    async with pool.acquire() as conn, conn.transaction():
        if plan.erase:
            erase = sorted(plan.erase)
            for statement in _ERASE:
                await conn.execute(statement, erase)
        if plan.snapshots:
            snaps = list(plan.snapshots.values())
            await conn.execute(
                _UPSERT_PEOPLE,
                [s.person for s in snaps], [s.email for s in snaps],
                [orjson.dumps(s.attributes).decode() for s in snaps],
                [s.suppressed for s in snaps], [s.unsubscribed for s in snaps],
                [_ts(s.at) for s in snaps],
            )
            await conn.execute(
                _LEAVE_SEGMENTS, [s.person for s in snaps], ["\x1f".join(s.segments) for s in snaps]
            )
            members = [(seg, s.person, _ts(t)) for s in snaps for seg, t in s.segments.items()]
            if members:
                await conn.execute(_JOIN_SEGMENTS, *map(list, zip(*members)))
        if plan.activity:
            rows = plan.activity
            await conn.execute(
                _INSERT_ACTIVITY,
                [a.person for a in rows], [_ts(a.at) for a in rows], [a.input_kind for a in rows],
                [a.summary for a in rows], [orjson.dumps(a.changes).decode() for a in rows],
            )
        if plan.catalog:
            keys = sorted(plan.catalog)
            values = [plan.catalog[k] for k in keys]
            await conn.execute(
                _UPSERT_CATALOG,
                [k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys], [k[3] for k in keys],
                [_ts(v[0]) for v in values], [_ts(v[1]) for v in values], [int(v[2]) for v in values],
            )
    return plan
