"""Read the projections back: activity, the event catalog, profiles, campaign metrics, segments,
journeys (where each is now, the steps it took, why each message was sent), recorded inputs.

The SQL of the read side, shared by the HTTP API (`streams/http/read_api.py`), the console and
the CLI (`nudge activity`, `nudge events`), so all answer the same thing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg
import orjson

from schemas.errors import StateError
from schemas.read_side import (
    ActivityEntry,
    CampaignFlow,
    CampaignMetrics,
    CatalogEvent,
    CatalogRow,
    FlowStep,
    JourneyMilestone,
    JourneyProvenance,
    JourneyStatus,
    JourneyStep,
    MessageProvenance,
    Profile,
    ProfileJourney,
    ProfileMessage,
    SegmentCount,
    SegmentMember,
    SegmentMembership,
    StepMetrics,
    StepOccupancy,
    group_catalog,
)

MAX_LIMIT = 1000


def _secs(value: datetime | None) -> float | None:
    return value.timestamp() if value is not None else None


def _limit(limit: int) -> int:
    if not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit must be between 1 and {MAX_LIMIT}, got {limit}")
    return limit


def _activity(record: asyncpg.Record) -> ActivityEntry:
    return ActivityEntry(
        id=record["id"],
        person=record["person"],
        at=record["at"].timestamp(),
        kind=record["kind"],
        summary=record["summary"],
        detail=orjson.loads(record["detail"]),
        input=orjson.loads(record["input"]) if record["input"] is not None else None,
    )


_ACTIVITY_COLUMNS = "id, person, at, kind, summary, detail::text AS detail, input::text AS input"


async def recent_activity(
    pool: asyncpg.Pool,
    *,
    person: str | None = None,
    kind: str | None = None,
    limit: int = 50,
    before: int | None = None,
) -> list[ActivityEntry]:
    """The latest inputs, newest (last arrived) first; `before` is an activity id to page back from."""
    records = await pool.fetch(
        f"SELECT {_ACTIVITY_COLUMNS} FROM activity"
        " WHERE ($1::text IS NULL OR person = $1) AND ($2::text IS NULL OR kind = $2)"
        "   AND ($3::bigint IS NULL OR id < $3)"
        " ORDER BY id DESC LIMIT $4",
        person, kind, before, _limit(limit),
    )
    return [_activity(r) for r in records]


async def activity_after(
    pool: asyncpg.Pool,
    after: int,
    *,
    person: str | None = None,
    kind: str | None = None,
    limit: int = 500,
) -> list[ActivityEntry]:
    """Inputs that arrived after the activity id `after`, oldest first (for following the log)."""
    records = await pool.fetch(
        f"SELECT {_ACTIVITY_COLUMNS} FROM activity"
        " WHERE id > $1 AND ($2::text IS NULL OR person = $2) AND ($3::text IS NULL OR kind = $3)"
        " ORDER BY id LIMIT $4",
        after, person, kind, _limit(limit),
    )
    return [_activity(r) for r in records]


async def catalog_rows(pool: asyncpg.Pool) -> list[CatalogRow]:
    """Every row of the event catalog, by event, type, property and JSON type."""
    records = await pool.fetch(
        "SELECT event, type, property, json_type, first_seen, last_seen, count FROM event_catalog"
        " ORDER BY event, type, property, json_type"
    )
    return [
        CatalogRow(
            event=r["event"], type=r["type"], property=r["property"], json_type=r["json_type"],
            first_seen=r["first_seen"].timestamp(), last_seen=r["last_seen"].timestamp(),
            count=r["count"],
        )
        for r in records
    ]


async def event_catalog(pool: asyncpg.Pool) -> list[CatalogEvent]:
    """Every event name seen, with its properties, their JSON types, first/last seen and counts."""
    return group_catalog(await catalog_rows(pool))


_PROFILE_MESSAGES = """
SELECT o.message_id, o.template, o.campaign_id, o.step, o.status, o.created_at, o.sent_at,
       o.last_error,
       -- The reason is in the command; erasure keeps it (it strips only `to` and `context`).
       coalesce(o.command->>'reason', '') AS reason,
       coalesce((SELECT json_agg(json_build_object('status', e.status,
                                                  'at', extract(epoch FROM e.at),
                                                  'detail', e.detail) ORDER BY e.id)
                 FROM message_events e WHERE e.message_id = o.message_id), '[]')::text AS timeline
FROM outbox o
WHERE o.person = $1
ORDER BY o.created_at DESC, o.message_id
LIMIT $2
"""


async def read_profile(
    pool: asyncpg.Pool, person: str, *, activity: int = 20, messages: int = 50
) -> Profile | None:
    """A person's attributes, segments with entry times, journeys, messages with their reason
    and status timeline, and latest activity; None when nothing at all is known of them."""
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT email, attributes::text AS attributes, suppressed, unsubscribed, updated_at"
            " FROM people WHERE person = $1",
            person,
        )
        segments = await conn.fetch(
            "SELECT segment, entered_at FROM segment_members WHERE person = $1"
            " ORDER BY entered_at, segment",
            person,
        )
        journeys = await conn.fetch(
            "SELECT campaign_id, journey_id, event, at, reason FROM journey_events"
            " WHERE person = $1 ORDER BY at, journey_id",
            person,
        )
        sent = await conn.fetch(_PROFILE_MESSAGES, person, _limit(messages))
        lines = await conn.fetch(
            f"SELECT {_ACTIVITY_COLUMNS} FROM activity WHERE person = $1 ORDER BY id DESC LIMIT $2",
            person, _limit(activity),
        )
    running = await person_journeys(pool, person)
    if row is None and not (segments or journeys or sent or lines or running):
        return None
    return Profile(
        id=person,
        exists=row is not None,
        email=row["email"] if row else None,
        attributes=orjson.loads(row["attributes"]) if row else {},
        suppressed=row["suppressed"] if row else False,
        unsubscribed=row["unsubscribed"] if row else False,
        updated_at=_secs(row["updated_at"]) if row else None,
        segments=[SegmentMembership(segment=s["segment"], entered_at=s["entered_at"].timestamp()) for s in segments],
        journeys=[
            ProfileJourney(
                campaign_id=j["campaign_id"], journey_id=j["journey_id"], event=j["event"],
                at=j["at"].timestamp(), reason=j["reason"],
            )
            for j in journeys
        ],
        messages=[
            ProfileMessage(
                message_id=m["message_id"], template=m["template"], campaign_id=m["campaign_id"],
                step=m["step"], status=m["status"], reason=m["reason"],
                created_at=m["created_at"].timestamp(), sent_at=_secs(m["sent_at"]),
                last_error=m["last_error"], timeline=orjson.loads(m["timeline"]),
            )
            for m in sent
        ],
        activity=[_activity(a) for a in lines],
        current_journeys=running,
    )


_STEP_METRICS = """
SELECT o.campaign_id, o.step, o.template,
       count(*) AS total,
       count(*) FILTER (WHERE o.status IN ('queued', 'sending')) AS pending,
       count(*) FILTER (WHERE o.status = 'sent') AS sent,
       count(*) FILTER (WHERE o.status = 'failed') AS failed,
       count(*) FILTER (WHERE EXISTS (SELECT 1 FROM message_events e
                                      WHERE e.message_id = o.message_id AND e.status = 'opened')) AS opened,
       count(*) FILTER (WHERE EXISTS (SELECT 1 FROM message_events e
                                      WHERE e.message_id = o.message_id AND e.status = 'clicked')) AS clicked
FROM outbox o
WHERE o.campaign_id IS NOT NULL
GROUP BY o.campaign_id, o.step, o.template
ORDER BY o.campaign_id, o.step NULLS FIRST, o.template
"""

_JOURNEY_COUNTS = ("entered", "in_progress", "completed", "exited", "converted")


async def campaign_metrics(pool: asyncpg.Pool) -> list[CampaignMetrics]:
    """Per campaign: journeys entered, in progress, completed, exited, converted; per step, the
    messages queued, still pending, sent, failed, opened and clicked (opens and clicks are each
    counted once per message)."""
    async with pool.acquire() as conn:
        journeys = await conn.fetch(
            f"SELECT campaign_id, {', '.join(_JOURNEY_COUNTS)} FROM campaign_metrics"
        )
        steps = await conn.fetch(_STEP_METRICS)
    by_campaign: dict[str, dict[str, Any]] = {
        r["campaign_id"]: {key: int(r[key]) for key in _JOURNEY_COUNTS} for r in journeys
    }
    step_lists: dict[str, list[StepMetrics]] = {}
    for s in steps:
        step_lists.setdefault(s["campaign_id"], []).append(
            StepMetrics(
                step=s["step"], template=s["template"],
                **{key: int(s[key]) for key in ("total", "pending", "sent", "failed", "opened", "clicked")},
            )
        )
    return [
        CampaignMetrics(campaign_id=c, **by_campaign.get(c, {}), steps=step_lists.get(c, []))
        for c in sorted(set(by_campaign) | set(step_lists))
    ]


async def segment_counts(pool: asyncpg.Pool) -> list[SegmentCount]:
    """Every segment with at least one member, and how many it has now."""
    records = await pool.fetch(
        "SELECT segment, count(*) AS members FROM segment_members GROUP BY segment ORDER BY segment"
    )
    return [SegmentCount(id=r["segment"], members=r["members"]) for r in records]


async def segment_members(
    pool: asyncpg.Pool, segment: str, *, limit: int = 100, after: str | None = None
) -> list[SegmentMember]:
    """People in `segment`, by id; `after` is the last id of the previous page."""
    records = await pool.fetch(
        "SELECT person, entered_at FROM segment_members"
        " WHERE segment = $1 AND ($2::text IS NULL OR person > $2) ORDER BY person LIMIT $3",
        segment, after, _limit(limit),
    )
    return [SegmentMember(person=r["person"], entered_at=r["entered_at"].timestamp()) for r in records]


class RecordedInputsMissing(StateError, RuntimeError):
    """This database's activity has no recorded inputs (`activity.input`): migrate it first."""


# Timer wakes: a replay (nudge simulate, the live stack) makes its own from the state.
ENGINE_MADE_KINDS = ("wake",)


async def recorded_inputs(
    pool: asyncpg.Pool,
    *,
    after: int = 0,
    person: str | None = None,
    since: float | None = None,
    until: float | None = None,
    limit: int = 5000,
) -> list[tuple[int, dict[str, Any]]]:
    """The inputs recorded with the activity after id `after`, oldest first, as (id, input):
    what producers wrote, and the merges (`absorb`) whose secondary's own inputs were erased with
    them; timer wakes are left out. For `nudge activity --export` and `nudge preview`."""
    if await pool.fetchval(
        "SELECT 1 FROM information_schema.columns WHERE table_name = 'activity' AND column_name = 'input'"
        " AND table_schema = current_schema()"
    ) is None:
        raise RecordedInputsMissing(
            "this database's activity does not record inputs yet; run `nudge migrate` (inputs are "
            "recorded from then on)"
        )
    records = await pool.fetch(
        "SELECT id, input::text AS input FROM activity"
        " WHERE id > $1 AND input IS NOT NULL AND NOT (kind = ANY($2::text[]))"
        "   AND ($3::text IS NULL OR person = $3)"
        "   AND ($4::float8 IS NULL OR at >= to_timestamp($4))"
        "   AND ($5::float8 IS NULL OR at < to_timestamp($5))"
        " ORDER BY id LIMIT $6",
        after, list(ENGINE_MADE_KINDS), person, since, until, limit,
    )
    return [(r["id"], orjson.loads(r["input"])) for r in records]


def step_order(path: str) -> tuple[int, ...]:
    """A step path's place in its campaign: "2" before "2.0.1" before "10"."""
    return tuple(int(part) for part in path.split(".") if part.isdigit())


_JOURNEY_COLUMNS = (
    "journey_id, person, campaign_id, campaign_version, status, position, resume_at,"
    " entered_at, ended_at, end_reason, converted_at"
)


def _journey(record: asyncpg.Record) -> JourneyStatus:
    return JourneyStatus(
        journey_id=record["journey_id"], person=record["person"],
        campaign_id=record["campaign_id"], campaign_version=record["campaign_version"],
        status=record["status"], position=record["position"], resume_at=_secs(record["resume_at"]),
        entered_at=_secs(record["entered_at"]), ended_at=_secs(record["ended_at"]),
        end_reason=record["end_reason"], converted_at=_secs(record["converted_at"]),
    )


async def person_journeys(pool: asyncpg.Pool, person: str) -> list[JourneyStatus]:
    """A person's journeys, running ones first, newest first within each."""
    records = await pool.fetch(
        f"SELECT {_JOURNEY_COLUMNS} FROM current_journeys WHERE person = $1"
        " ORDER BY status <> 'active', coalesce(entered_at, updated_at) DESC, journey_id",
        person,
    )
    return [_journey(r) for r in records]


async def journey_provenance(pool: asyncpg.Pool, journey_id: str) -> JourneyProvenance | None:
    """A journey's current state, milestones and steps taken (in order), or None if unknown."""
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            f"SELECT {_JOURNEY_COLUMNS} FROM current_journeys WHERE journey_id = $1", journey_id
        )
        if row is None:
            return None
        milestones = await conn.fetch(
            "SELECT event, at, reason, step, detail::text AS detail FROM journey_events"
            " WHERE journey_id = $1 ORDER BY at, event = 'converted', event",
            journey_id,
        )
        steps = await conn.fetch(
            "SELECT step, step_kind, at, reason, detail::text AS detail FROM journey_steps"
            " WHERE journey_id = $1",
            journey_id,
        )
    taken = sorted(steps, key=lambda s: (s["at"], step_order(s["step"])))
    return JourneyProvenance(
        journey=_journey(row),
        milestones=[
            JourneyMilestone(event=m["event"], at=m["at"].timestamp(), reason=m["reason"],
                             step=m["step"], detail=orjson.loads(m["detail"]))
            for m in milestones
        ],
        steps=[
            JourneyStep(step=s["step"], step_kind=s["step_kind"], at=s["at"].timestamp(),
                        reason=s["reason"], detail=orjson.loads(s["detail"]))
            for s in taken
        ],
    )


_MESSAGE = """
SELECT o.message_id, o.template, o.campaign_id, o.campaign_version, o.journey_id, o.step,
       o.status, o.created_at, o.sent_at, o.last_error, o.command::text AS command,
       coalesce(o.command->>'reason', '') AS reason,
       coalesce((SELECT json_agg(json_build_object('status', e.status,
                                                  'at', extract(epoch FROM e.at),
                                                  'detail', e.detail) ORDER BY e.id)
                 FROM message_events e WHERE e.message_id = o.message_id), '[]')::text AS timeline
FROM outbox o
WHERE o.message_id = $1
"""


async def message_provenance(pool: asyncpg.Pool, message_id: str) -> MessageProvenance | None:
    """Why a message was sent: the message, its send command as decided, and its journey's
    steps and milestones; None for an unknown message id."""
    m = await pool.fetchrow(_MESSAGE, message_id)
    if m is None:
        return None
    journey = await journey_provenance(pool, m["journey_id"]) if m["journey_id"] else None
    return MessageProvenance(
        message=ProfileMessage(
            message_id=m["message_id"], template=m["template"], campaign_id=m["campaign_id"],
            step=m["step"], status=m["status"], reason=m["reason"],
            created_at=m["created_at"].timestamp(), sent_at=_secs(m["sent_at"]),
            last_error=m["last_error"], timeline=orjson.loads(m["timeline"]),
        ),
        campaign_version=m["campaign_version"],
        command=orjson.loads(m["command"]),
        journey=journey,
    )


async def journeys_waiting(pool: asyncpg.Pool, campaign_id: str) -> list[StepOccupancy]:
    """Running journeys of a campaign per version and step they wait at, with the soonest wake-up
    ("how many people wait at the 48 h step of welcome right now")."""
    records = await pool.fetch(
        "SELECT campaign_version, position, count(*) AS journeys, min(resume_at) AS next_wake_up"
        " FROM current_journeys WHERE campaign_id = $1 AND status = 'active'"
        " GROUP BY campaign_version, position",
        campaign_id,
    )
    rows = [
        StepOccupancy(campaign_version=r["campaign_version"], position=r["position"],
                      journeys=r["journeys"], next_wake_up=_secs(r["next_wake_up"]))
        for r in records
    ]
    return sorted(rows, key=lambda r: (r.campaign_version, step_order(r.position or "")))


_FLOW_REACHED = """
SELECT step, max(step_kind) AS step_kind, count(*) AS reached FROM journey_steps
WHERE campaign_id = $1 GROUP BY step
"""

_FLOW_ARMS = """
SELECT step, detail->>'arm' AS arm, count(*) AS journeys FROM journey_steps
WHERE campaign_id = $1 AND detail ? 'arm' GROUP BY step, detail->>'arm'
"""

_FLOW_NOW = """
SELECT position AS step, count(*) AS now FROM current_journeys
WHERE campaign_id = $1 AND status = 'active' AND position IS NOT NULL GROUP BY position
"""

_FLOW_EXITED = """
SELECT step, count(*) AS exited FROM journey_events
WHERE campaign_id = $1 AND event = 'exited' AND step IS NOT NULL GROUP BY step
"""


async def campaign_flow(pool: asyncpg.Pool, campaign_id: str) -> CampaignFlow:
    """Every step of a campaign its journeys have reached or wait at, in step order: journeys
    there now, that took it, that exited at it, and for a choice, per arm (all versions)."""
    async with pool.acquire() as conn:
        reached = {r["step"]: r for r in await conn.fetch(_FLOW_REACHED, campaign_id)}
        arms: dict[str, dict[str, int]] = {}
        for r in await conn.fetch(_FLOW_ARMS, campaign_id):
            arms.setdefault(r["step"], {})["none" if r["arm"] is None else r["arm"]] = r["journeys"]
        now = {r["step"]: r["now"] for r in await conn.fetch(_FLOW_NOW, campaign_id)}
        exited = {r["step"]: r["exited"] for r in await conn.fetch(_FLOW_EXITED, campaign_id)}
    steps = sorted(set(reached) | set(now) | set(exited), key=step_order)
    return CampaignFlow(
        campaign_id=campaign_id,
        steps=[
            FlowStep(
                step=step,
                step_kind=reached[step]["step_kind"] if step in reached else "",
                now=now.get(step, 0),
                reached=reached[step]["reached"] if step in reached else 0,
                exited=exited.get(step, 0),
                arms=arms.get(step, {}),
            )
            for step in steps
        ],
    )
