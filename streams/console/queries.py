"""The console's SQL: each function answers one page (or one part of it) from the read models.

Rows come back as plain dicts with times in Unix seconds, so a page renders them and its JSON
form (`Accept: application/json`) dumps the same thing. Every list is bounded (`limit`), and
every query is served by an index (`streams/sql/04x`, `05x`), so a page stays fast with
hundreds of thousands of people and millions of activity rows.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson

from agents.projector.queries import person_journeys

PAGE = 50
MAX_PAGE = 500


def _value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.timestamp()
    return value


def _row(record: asyncpg.Record | None, json_columns: tuple[str, ...] = ()) -> dict[str, Any] | None:
    if record is None:
        return None
    row = {key: _value(value) for key, value in record.items()}
    for column in json_columns:
        raw = row.get(column)
        row[column] = orjson.loads(raw) if isinstance(raw, (str, bytes)) else raw
    return row


def _rows(records: list[asyncpg.Record], json_columns: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    return [r for r in (_row(x, json_columns) for x in records) if r is not None]


def page_size(limit: int) -> int:
    """`limit` clamped to what a page may show."""
    return max(1, min(limit, MAX_PAGE))


# --- activity ------------------------------------------------------------------------------

_ACTIVITY = (
    "SELECT id, person, at, kind, summary, detail::text AS detail, input::text AS input"
    " FROM activity"
)
_ACTIVITY_FILTER = (
    " WHERE ($1::text IS NULL OR person = $1) AND ($2::text IS NULL OR kind = $2)"
    "   AND ($3::text IS NULL OR input->>'name' = $3)"
)


async def activity(
    pool: asyncpg.Pool,
    *,
    person: str | None = None,
    kind: str | None = None,
    event: str | None = None,
    before: int | None = None,
    after: int | None = None,
    limit: int = PAGE,
) -> list[dict[str, Any]]:
    """Inputs newest first (`before`: an id to page back from), or newer than `after`, oldest
    last, for the live view; filtered by person, input kind and event name."""
    if after is not None:
        records = await pool.fetch(
            f"SELECT * FROM ({_ACTIVITY}{_ACTIVITY_FILTER} AND id > $4 ORDER BY id LIMIT $5) AS newer"
            " ORDER BY id DESC",
            person, kind, event, after, page_size(limit),
        )
    else:
        records = await pool.fetch(
            f"{_ACTIVITY}{_ACTIVITY_FILTER} AND ($4::bigint IS NULL OR id < $4) ORDER BY id DESC LIMIT $5",
            person, kind, event, before, page_size(limit),
        )
    return _rows(records, ("detail", "input"))


async def activity_kinds(pool: asyncpg.Pool) -> list[str]:
    """The input kinds the activity log holds (a loose index scan: one probe per kind)."""
    records = await pool.fetch(
        """
        WITH RECURSIVE kinds(kind) AS (
            (SELECT kind FROM activity ORDER BY kind LIMIT 1)
            UNION ALL
            SELECT (SELECT kind FROM activity WHERE kind > kinds.kind ORDER BY kind LIMIT 1)
            FROM kinds WHERE kinds.kind IS NOT NULL
        )
        SELECT kind FROM kinds WHERE kind IS NOT NULL
        """
    )
    return [r["kind"] for r in records]


async def event_names(pool: asyncpg.Pool) -> list[str]:
    """Every event name seen (from the event catalog)."""
    records = await pool.fetch("SELECT DISTINCT event FROM event_catalog ORDER BY event")
    return [r["event"] for r in records]


# --- people --------------------------------------------------------------------------------


async def search_people(pool: asyncpg.Pool, text: str, limit: int = PAGE) -> list[dict[str, Any]]:
    """People whose id or email is `text` or starts with it (case-insensitive for email)."""
    text = text.strip()
    records = await pool.fetch(
        """
        SELECT person, email, updated_at FROM (
            (SELECT person, email, updated_at, 0 AS rank FROM people WHERE person = $1)
            UNION ALL
            (SELECT person, email, updated_at, 1 FROM people WHERE lower(email) = lower($1))
            UNION ALL
            (SELECT person, email, updated_at, 2 FROM people
              WHERE person LIKE $2 ESCAPE '\\' ORDER BY person LIMIT $3)
            UNION ALL
            (SELECT person, email, updated_at, 3 FROM people
              WHERE lower(email) LIKE lower($2) ESCAPE '\\' ORDER BY lower(email) LIMIT $3)
        ) AS found
        GROUP BY person, email, updated_at ORDER BY min(rank), person LIMIT $3
        """,
        text, _prefix(text), page_size(limit),
    )
    return _rows(records)


def _prefix(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


async def recent_people(pool: asyncpg.Pool, limit: int = PAGE) -> list[dict[str, Any]]:
    """The people updated last."""
    records = await pool.fetch(
        "SELECT person, email, updated_at FROM people ORDER BY updated_at DESC LIMIT $1",
        page_size(limit),
    )
    return _rows(records)


async def count_people(pool: asyncpg.Pool) -> int:
    """How many people have a profile (the planner's estimate: exact counts scan the table)."""
    estimate = await pool.fetchval("SELECT reltuples::bigint FROM pg_class WHERE oid = 'people'::regclass")
    if estimate is None or estimate < 0:
        return int(await pool.fetchval("SELECT count(*) FROM people"))
    return int(estimate)


async def person(pool: asyncpg.Pool, person_id: str) -> dict[str, Any] | None:
    """Everything the person page shows; None when nothing at all is known of them."""
    async with pool.acquire() as conn:
        profile = _row(
            await conn.fetchrow(
                "SELECT person, email, attributes::text AS attributes, suppressed, unsubscribed, updated_at"
                " FROM people WHERE person = $1",
                person_id,
            ),
            ("attributes",),
        )
        segments = _rows(await conn.fetch(
            "SELECT segment, entered_at FROM segment_members WHERE person = $1 ORDER BY entered_at, segment",
            person_id,
        ))
        messages = _rows(await conn.fetch(
            "SELECT message_id, template, campaign_id, step, status, created_at, sent_at, last_error"
            " FROM outbox WHERE person = $1 ORDER BY created_at DESC LIMIT 100",
            person_id,
        ))
        events = _rows(await conn.fetch(
            f"{_ACTIVITY} WHERE person = $1 AND kind = 'track' ORDER BY id DESC LIMIT 100",
            person_id,
        ), ("detail", "input"))
        recent = _rows(await conn.fetch(
            f"{_ACTIVITY} WHERE person = $1 ORDER BY id DESC LIMIT 30", person_id
        ), ("detail", "input"))
    journeys = [j.model_dump(mode="json") for j in await person_journeys(pool, person_id)]
    if profile is None and not (segments or journeys or messages or recent):
        return None
    return {
        "id": person_id,
        "profile": profile,
        "segments": segments,
        "journeys": journeys,
        "messages": messages,
        "events": events,
        "activity": recent,
    }


# --- messages ------------------------------------------------------------------------------

_MESSAGE_COLUMNS = (
    "message_id, person, to_address, template, campaign_id, campaign_version, journey_id, step,"
    " status, attempts, last_error, created_at, sent_at"
)


def message_id_of(text: str) -> str:
    """A message id as a user may paste it: bare, or as the `<id@domain>` Message-ID header."""
    text = text.strip()
    if text.startswith("<") and text.endswith(">"):
        text = text[1:-1]
    return text.split("@", 1)[0] if "@" in text else text


async def search_messages(
    pool: asyncpg.Pool,
    *,
    text: str | None = None,
    person: str | None = None,
    status: str | None = None,
    before: float | None = None,
    limit: int = PAGE,
) -> list[dict[str, Any]]:
    """Messages newest first: `text` is a message id (or Message-ID) or a person id."""
    ident = message_id_of(text) if text else None
    records = await pool.fetch(
        f"SELECT {_MESSAGE_COLUMNS} FROM outbox"
        " WHERE ($1::text IS NULL OR message_id = $1 OR person = $1)"
        "   AND ($2::text IS NULL OR person = $2) AND ($3::text IS NULL OR status = $3)"
        "   AND ($4::timestamptz IS NULL OR created_at < $4)"
        " ORDER BY created_at DESC LIMIT $5",
        ident, person, status, _when(before), page_size(limit),
    )
    return _rows(records)


def _when(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


# --- journeys and campaigns (beside agents/projector/queries.py's provenance and flow) -----


async def journey_messages(pool: asyncpg.Pool, journey_id: str) -> list[dict[str, Any]]:
    """The messages a journey queued, oldest first."""
    records = await pool.fetch(
        "SELECT message_id, template, step, status, created_at, sent_at FROM outbox"
        " WHERE journey_id = $1 ORDER BY created_at",
        journey_id,
    )
    return _rows(records)


async def campaign_definition(pool: asyncpg.Pool, campaign_id: str, version: str) -> dict[str, Any] | None:
    """The exact campaign version a journey ran, as the worker registered it."""
    raw = await pool.fetchval(
        "SELECT definition::text FROM campaign_versions WHERE campaign_id = $1 AND version = $2",
        campaign_id, version,
    )
    return orjson.loads(raw) if raw else None


# --- campaigns -----------------------------------------------------------------------------


async def campaign_totals(pool: asyncpg.Pool, campaign_id: str | None = None) -> dict[str, dict[str, int]]:
    """Per campaign (or only `campaign_id`): journeys entered, active now, completed, exited,
    converted (the `campaign_metrics` view)."""
    records = await pool.fetch(
        "SELECT campaign_id, entered, in_progress AS active, completed, exited, converted FROM campaign_metrics"
        " WHERE $1::text IS NULL OR campaign_id = $1",
        campaign_id,
    )
    return {r["campaign_id"]: {k: int(v) for k, v in r.items() if k != "campaign_id"} for r in records}


async def step_outcomes(pool: asyncpg.Pool, campaign_id: str) -> dict[str, dict[str, Any]]:
    """Per step path of one campaign: journeys that completed or converted there, and for a send
    step its messages: total, pending, sent, failed, opened, clicked (each once per message)."""
    # Three independent counts: run at once, each on its own connection.
    ended, by_status, engaged = await asyncio.gather(
        pool.fetch(
            "SELECT step, event, count(*) AS n FROM journey_events"
            " WHERE campaign_id = $1 AND event IN ('completed', 'converted') AND step IS NOT NULL"
            " GROUP BY step, event",
            campaign_id,
        ),
        pool.fetch(
            "SELECT step, template, status, count(*) AS n FROM outbox WHERE campaign_id = $1"
            " GROUP BY step, template, status",
            campaign_id,
        ),
        # From the engagement events (few) to their messages, not from every message to its events.
        pool.fetch(
            "SELECT o.step, o.template, e.status, count(DISTINCT e.message_id) AS n"
            " FROM message_events e JOIN outbox o ON o.message_id = e.message_id"
            " WHERE e.status IN ('opened', 'clicked') AND o.campaign_id = $1"
            " GROUP BY o.step, o.template, e.status",
            campaign_id,
        ),
    )
    steps: dict[str, dict[str, Any]] = {}
    for r in ended:
        steps.setdefault(r["step"], {"sends": []})[r["event"]] = int(r["n"])
    sends: dict[tuple[str, str], dict[str, Any]] = {}

    def send(step: str | None, template: str) -> dict[str, Any]:
        key = (step or "", template)
        if key not in sends:
            sends[key] = {"template": template, "total": 0, "pending": 0, "sent": 0, "failed": 0,
                          "opened": 0, "clicked": 0}
            steps.setdefault(key[0], {"sends": []})["sends"].append(sends[key])
        return sends[key]

    for r in by_status:
        counts = send(r["step"], r["template"])
        counts["total"] += int(r["n"])
        counts["pending" if r["status"] in ("queued", "sending") else r["status"]] += int(r["n"])
    for r in engaged:
        send(r["step"], r["template"])[r["status"]] = int(r["n"])
    return steps


async def waiting_people(
    pool: asyncpg.Pool, campaign_id: str, position: str, limit: int = PAGE
) -> list[dict[str, Any]]:
    """Who waits at one step of a campaign now, with their next wake-up."""
    records = await pool.fetch(
        "SELECT journey_id, person, campaign_version, entered_at, resume_at FROM current_journeys"
        " WHERE campaign_id = $1 AND status = 'active' AND position = $2"
        " ORDER BY resume_at NULLS LAST, journey_id LIMIT $3",
        campaign_id, position, page_size(limit),
    )
    return _rows(records)


# --- segments ------------------------------------------------------------------------------


async def segment_size(pool: asyncpg.Pool, segment: str) -> int:
    """Members of one segment now (an index-only count)."""
    return int(await pool.fetchval("SELECT count(*) FROM segment_members WHERE segment = $1", segment))


async def segment_sizes(pool: asyncpg.Pool) -> dict[str, int]:
    """Members per segment now."""
    records = await pool.fetch("SELECT segment, count(*) AS n FROM segment_members GROUP BY segment")
    return {r["segment"]: int(r["n"]) for r in records}


async def segment_history(pool: asyncpg.Pool, segment: str | None, since: float) -> list[dict[str, Any]]:
    """Sampled sizes (`segment_sizes`) since `since`, oldest first; every segment when None."""
    records = await pool.fetch(
        "SELECT segment, at, members FROM segment_size_samples"
        " WHERE ($1::text IS NULL OR segment = $1) AND at >= $2 ORDER BY segment, at",
        segment, _when(since),
    )
    return _rows(records)


async def segment_members(
    pool: asyncpg.Pool, segment: str, after: str | None = None, limit: int = PAGE
) -> list[dict[str, Any]]:
    """Members of a segment by person id, from `after` on."""
    records = await pool.fetch(
        "SELECT m.person, m.entered_at, p.email FROM segment_members m"
        " LEFT JOIN people p ON p.person = m.person"
        " WHERE m.segment = $1 AND ($2::text IS NULL OR m.person > $2) ORDER BY m.person LIMIT $3",
        segment, after, page_size(limit),
    )
    return _rows(records)


async def sample_segment_sizes(pool: asyncpg.Pool, bucket_seconds: int, keep_days: int) -> int:
    """Record every segment's size in this time bucket (once, whoever samples first); drop old samples."""
    async with pool.acquire() as conn, conn.transaction():
        inserted = await conn.execute(
            """
            INSERT INTO segment_size_samples (segment, at, members)
            SELECT segment, to_timestamp(floor(extract(epoch FROM now()) / $1) * $1), count(*)
            FROM segment_members GROUP BY segment
            ON CONFLICT (segment, at) DO NOTHING
            """,
            bucket_seconds,
        )
        await conn.execute(
            "DELETE FROM segment_size_samples WHERE at < now() - make_interval(days => $1)", keep_days
        )
    return int(inserted.split()[-1])


# --- broadcasts ----------------------------------------------------------------------------


async def broadcasts(pool: asyncpg.Pool, limit: int = PAGE) -> list[dict[str, Any]]:
    """Broadcasts and backfill scans, newest first, with their partition progress."""
    records = await pool.fetch(
        """
        SELECT b.id, b.kind, b.campaign, b.template, b.segment, b.partitions, b.rate, b.reason,
               b.created_at,
               coalesce(sum(p.scanned), 0)::bigint AS scanned, coalesce(sum(p.enqueued), 0)::bigint AS enqueued,
               count(*) FILTER (WHERE p.done) AS partitions_done, max(p.updated_at) AS updated_at
        FROM (SELECT * FROM broadcasts ORDER BY created_at DESC LIMIT $1) AS b
        LEFT JOIN broadcast_progress p ON p.broadcast = b.id
        GROUP BY b.id, b.kind, b.campaign, b.template, b.segment, b.partitions, b.rate, b.reason, b.created_at
        ORDER BY b.created_at DESC
        """,
        page_size(limit),
    )
    return _rows(records)


async def broadcast(pool: asyncpg.Pool, broadcast_id: str) -> dict[str, Any] | None:
    """One broadcast: its partitions' progress and its messages by status."""
    async with pool.acquire() as conn:
        row = _row(await conn.fetchrow("SELECT * FROM broadcasts WHERE id = $1", broadcast_id))
        if row is None:
            return None
        row["progress"] = _rows(await conn.fetch(
            "SELECT partition, scanned, enqueued, done, updated_at FROM broadcast_progress"
            " WHERE broadcast = $1 ORDER BY partition",
            broadcast_id,
        ))
        statuses = await conn.fetch(
            "SELECT status, count(*) AS n FROM outbox WHERE journey_id = $1 GROUP BY status",
            f"broadcast:{broadcast_id}",
        )
        row["messages"] = {r["status"]: int(r["n"]) for r in statuses}
    return row
