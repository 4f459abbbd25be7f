"""Write planned read-model rows to PostgreSQL: profiles, segment members, activity, the event
catalog, journey milestones, steps and current journeys, and erasures.

Every statement is idempotent, so a batch replayed after a crash changes nothing: activity rows
carry their projection's fingerprint, journey rows their (journey, event or step) key, and the
event catalog counts only activity rows actually inserted.
"""

from __future__ import annotations

import asyncpg

from agents.projector.erasure import erase_people
from agents.projector.plan import ActivityRow, JourneyNow, Segment, catalog_counts

_UPSERT_PEOPLE = """
INSERT INTO people (person, email, attributes, suppressed, unsubscribed, updated_at)
SELECT u.p, u.e, u.a::jsonb, u.s, u.un, to_timestamp(u.t)
FROM unnest($1::text[], $2::text[], $3::text[], $4::bool[], $5::bool[], $6::float8[])
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
SELECT u.s, u.p, to_timestamp(u.t) FROM unnest($1::text[], $2::text[], $3::float8[]) AS u(s, p, t)
ON CONFLICT (segment, person) DO UPDATE SET entered_at = EXCLUDED.entered_at
WHERE segment_members.entered_at <> EXCLUDED.entered_at
"""

_INSERT_ACTIVITY = """
INSERT INTO activity (person, at, kind, summary, detail, input, fingerprint)
SELECT u.p, to_timestamp(u.t), u.k, u.s, u.d::jsonb, u.i::jsonb, u.f
FROM unnest($1::text[], $2::float8[], $3::text[], $4::text[], $5::text[], $6::text[],
            $7::bytea[]) WITH ORDINALITY AS u(p, t, k, s, d, i, f, n)
ORDER BY u.n
ON CONFLICT (fingerprint) DO NOTHING
RETURNING fingerprint
"""

_UPSERT_CATALOG = """
INSERT INTO event_catalog (event, type, property, json_type, first_seen, last_seen, count)
SELECT u.e, u.t, u.p, u.j, to_timestamp(u.f), to_timestamp(u.l), u.n
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::float8[], $6::float8[],
            $7::bigint[]) AS u(e, t, p, j, f, l, n)
ON CONFLICT (event, type, property, json_type) DO UPDATE SET
    first_seen = least(event_catalog.first_seen, EXCLUDED.first_seen),
    last_seen = greatest(event_catalog.last_seen, EXCLUDED.last_seen),
    count = event_catalog.count + EXCLUDED.count
"""

_INSERT_JOURNEY_EVENTS = """
INSERT INTO journey_events (journey_id, event, person, campaign_id, campaign_version, at, reason,
                            step, detail)
SELECT u.j, u.e, u.p, u.c, u.v, to_timestamp(u.t), u.r, u.s, u.d::jsonb
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::float8[],
            $7::text[], $8::text[], $9::text[]) AS u(j, e, p, c, v, t, r, s, d)
ON CONFLICT (journey_id, event) DO NOTHING
"""

_UPSERT_JOURNEY_STEPS = """
INSERT INTO journey_steps (journey_id, step, step_kind, person, campaign_id, campaign_version,
                           at, reason, detail)
SELECT u.j, u.s, u.k, u.p, u.c, u.v, to_timestamp(u.t), u.r, u.d::jsonb
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
            $7::float8[], $8::text[], $9::text[]) AS u(j, s, k, p, c, v, t, r, d)
ON CONFLICT (journey_id, step) DO UPDATE SET
    step_kind = EXCLUDED.step_kind, at = EXCLUDED.at, reason = EXCLUDED.reason,
    detail = EXCLUDED.detail
WHERE journey_steps.at <= EXCLUDED.at
"""

_JOURNEY_COLUMNS = """(journey_id, person, campaign_id, campaign_version, status, position,
                      resume_at, entered_at, ended_at, end_reason, converted_at, updated_at)
SELECT u.j, u.p, u.c, u.v, u.s, u.pos, to_timestamp(u.r), to_timestamp(u.e), to_timestamp(u.x),
       u.why, to_timestamp(u.conv), to_timestamp(u.t)
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
            $7::float8[], $8::float8[], $9::float8[], $10::text[], $11::float8[], $12::float8[])
     AS u(j, p, c, v, s, pos, r, e, x, why, conv, t)"""

# A journey that moved (entered, took a step, ended): where it is now, unless the stored row is
# newer (a replay of older projections must not move it back).
_UPSERT_MOVED_JOURNEYS = f"""
INSERT INTO current_journeys {_JOURNEY_COLUMNS}
ON CONFLICT (journey_id) DO UPDATE SET
    status = EXCLUDED.status, position = EXCLUDED.position, resume_at = EXCLUDED.resume_at,
    entered_at = coalesce(current_journeys.entered_at, EXCLUDED.entered_at),
    ended_at = coalesce(EXCLUDED.ended_at, current_journeys.ended_at),
    end_reason = CASE WHEN EXCLUDED.ended_at IS NULL THEN current_journeys.end_reason
                      ELSE EXCLUDED.end_reason END,
    converted_at = coalesce(current_journeys.converted_at, EXCLUDED.converted_at),
    updated_at = EXCLUDED.updated_at
WHERE current_journeys.updated_at <= EXCLUDED.updated_at
"""

# A journey only seen converting: the conversion, nothing else.
_UPSERT_CONVERTED_JOURNEYS = f"""
INSERT INTO current_journeys {_JOURNEY_COLUMNS}
ON CONFLICT (journey_id) DO UPDATE SET
    converted_at = coalesce(current_journeys.converted_at, EXCLUDED.converted_at)
"""


async def write_segments(conn: asyncpg.Connection, segments: list[Segment]) -> None:
    """Write planned segments, in order, inside the caller's transaction."""
    for segment in segments:
        if segment.erase_first:
            await erase_people(conn, segment.erase_first)
        await _people(conn, segment)
        await _activity(conn, segment.activity)
        await _journeys(conn, segment)


async def _people(conn: asyncpg.Connection, segment: Segment) -> None:
    rows = list(segment.people.values())
    if not rows:
        return
    await conn.execute(
        _UPSERT_PEOPLE,
        [r.person for r in rows], [r.email for r in rows], [r.attributes for r in rows],
        [r.suppressed for r in rows], [r.unsubscribed for r in rows], [r.at for r in rows],
    )
    await conn.execute(
        _LEAVE_SEGMENTS, [r.person for r in rows], ["\x1f".join(r.segments) for r in rows]
    )
    members = [(seg, r.person, t) for r in rows for seg, t in r.segments.items()]
    if members:
        await conn.execute(_JOIN_SEGMENTS, *map(list, zip(*members, strict=True)))


async def _activity(conn: asyncpg.Connection, rows: list[ActivityRow]) -> None:
    if not rows:
        return
    inserted = {
        r["fingerprint"]
        for r in await conn.fetch(
            _INSERT_ACTIVITY,
            [r.person for r in rows], [r.at for r in rows], [r.kind for r in rows],
            [r.summary for r in rows], [r.detail for r in rows], [r.input for r in rows],
            [r.fingerprint for r in rows],
        )
    }
    counts = catalog_counts([r for r in rows if r.fingerprint in inserted])
    if counts:
        keys = sorted(counts)
        values = [counts[k] for k in keys]
        await conn.execute(
            _UPSERT_CATALOG,
            [k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys], [k[3] for k in keys],
            [v[0] for v in values], [v[1] for v in values], [v[2] for v in values],
        )


async def _journeys(conn: asyncpg.Connection, segment: Segment) -> None:
    events = list(segment.journey_events.values())
    if events:
        await conn.execute(
            _INSERT_JOURNEY_EVENTS,
            [e.journey_id for e in events], [e.event for e in events], [e.person for e in events],
            [e.campaign_id for e in events], [e.campaign_version for e in events],
            [e.at for e in events], [e.reason for e in events], [e.step for e in events],
            [e.detail for e in events],
        )
    steps = list(segment.journey_steps.values())
    if steps:
        await conn.execute(
            _UPSERT_JOURNEY_STEPS,
            [s.journey_id for s in steps], [s.step for s in steps], [s.step_kind for s in steps],
            [s.person for s in steps], [s.campaign_id for s in steps],
            [s.campaign_version for s in steps], [s.at for s in steps],
            [s.reason for s in steps], [s.detail for s in steps],
        )
    moved = [j for j in segment.journeys.values() if j.moved]
    converted = [j for j in segment.journeys.values() if not j.moved]
    for statement, rows in ((_UPSERT_MOVED_JOURNEYS, moved), (_UPSERT_CONVERTED_JOURNEYS, converted)):
        if rows:
            await conn.execute(statement, *_journey_columns(rows))


def _journey_columns(rows: list[JourneyNow]) -> list[list[object]]:
    return [
        [j.journey_id for j in rows], [j.person for j in rows], [j.campaign_id for j in rows],
        [j.campaign_version for j in rows], [j.status for j in rows], [j.position for j in rows],
        [j.resume_at for j in rows], [j.entered_at for j in rows], [j.ended_at for j in rows],
        [j.end_reason for j in rows], [j.converted_at for j in rows], [j.updated_at for j in rows],
    ]
