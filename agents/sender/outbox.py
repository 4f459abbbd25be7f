"""The PostgreSQL outbox: insert send commands, claim due rows, record each outcome.

Every function takes an asyncpg pool. Times are Unix seconds; `now=None` means the database's
clock, and a given `now` lets the delivery loop (and tests) run on their own clock.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Iterable

import asyncpg

from schemas.commands import SendEmail
from schemas.outbox import MessageEvent, MessageStatus, OutboxRow

# Big enough to amortise round trips, small enough to keep one statement's arrays modest.
_BATCH = 500

_NOW = "coalesce(${n}::timestamptz, now())"

_ROW_COLUMNS = (
    "message_id, person, to_address, template, campaign_id, campaign_version, journey_id,"
    " step, command, status, attempts, next_attempt_at, claimed_at, last_error, created_at,"
    " updated_at, sent_at, smtp_response"
)


def _ts(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, tz=timezone.utc)


def _secs(value: datetime | None) -> float | None:
    return None if value is None else value.timestamp()


def _row(record: asyncpg.Record) -> OutboxRow:
    command = record["command"]
    return OutboxRow(
        message_id=record["message_id"],
        person=record["person"],
        to_address=record["to_address"],
        template=record["template"],
        campaign_id=record["campaign_id"],
        campaign_version=record["campaign_version"],
        journey_id=record["journey_id"],
        step=record["step"],
        # Text without a jsonb codec on the pool, already decoded with one.
        command=(
            SendEmail.model_validate_json(command)
            if isinstance(command, str)
            else SendEmail.model_validate(command)
        ),
        status=record["status"],
        attempts=record["attempts"],
        next_attempt_at=record["next_attempt_at"].timestamp(),
        claimed_at=_secs(record["claimed_at"]),
        last_error=record["last_error"],
        created_at=record["created_at"].timestamp(),
        updated_at=record["updated_at"].timestamp(),
        sent_at=_secs(record["sent_at"]),
        smtp_response=record["smtp_response"],
    )


def _chunks(items: list[Any], size: int) -> Iterable[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


_INSERT_SENDS = f"""
WITH ins AS (
    INSERT INTO outbox (message_id, person, to_address, template, campaign_id,
                        campaign_version, journey_id, step, command,
                        next_attempt_at, created_at, updated_at)
    SELECT u.m, u.p, u.t, u.tpl, u.c, u.cv, u.j, u.s, u.cmd::jsonb,
           {_NOW.format(n=11)}, {_NOW.format(n=11)}, {_NOW.format(n=11)}
    FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                $7::text[], $8::text[], $9::text[], $10::text[])
         AS u(m, p, t, tpl, c, cv, j, s, cmd, reason)
    ON CONFLICT (message_id) DO NOTHING
    RETURNING message_id
), ev AS (
    INSERT INTO message_events (message_id, status, at, detail)
    SELECT ins.message_id, 'queued', {_NOW.format(n=11)}, nullif(u.reason, '')
    FROM ins JOIN unnest($1::text[], $10::text[]) AS u(m, reason) ON u.m = ins.message_id
)
SELECT count(*) FROM ins
"""


async def insert_sends(
    pool: asyncpg.Pool, commands: list[SendEmail], *, now: float | None = None
) -> int:
    """Queue send commands; a message id already in the outbox is skipped. Returns rows added."""
    unique: dict[str, SendEmail] = {}
    for command in commands:
        unique.setdefault(command.message_id, command)
    inserted = 0
    async with pool.acquire() as conn:
        for batch in _chunks(list(unique.values()), _BATCH):
            inserted += await conn.fetchval(
                _INSERT_SENDS,
                [c.message_id for c in batch],
                [c.person for c in batch],
                [c.to for c in batch],
                [c.template for c in batch],
                [c.campaign_id for c in batch],
                [c.campaign_version for c in batch],
                [c.journey_id for c in batch],
                [c.step for c in batch],
                [c.model_dump_json() for c in batch],
                [c.reason for c in batch],
                _ts(now),
            )
    return inserted


_CLAIM_DUE = f"""
WITH due AS (
    SELECT message_id FROM outbox
    WHERE status = 'queued' AND next_attempt_at <= {_NOW.format(n=2)}
    ORDER BY next_attempt_at
    LIMIT $1
    FOR UPDATE SKIP LOCKED
), claimed AS (
    UPDATE outbox o
    SET status = 'sending', attempts = o.attempts + 1,
        claimed_at = {_NOW.format(n=2)}, updated_at = {_NOW.format(n=2)}
    FROM due WHERE o.message_id = due.message_id
    RETURNING o.*
), ev AS (
    INSERT INTO message_events (message_id, status, at, detail)
    SELECT message_id, 'sending', {_NOW.format(n=2)}, 'attempt ' || attempts FROM claimed
)
SELECT {_ROW_COLUMNS} FROM claimed ORDER BY next_attempt_at, message_id
"""


async def claim_due(
    pool: asyncpg.Pool, limit: int, now: float | None = None
) -> list[OutboxRow]:
    """Claim up to `limit` due queued rows (status -> sending, attempts + 1), skipping locked ones."""
    records = await pool.fetch(_CLAIM_DUE, limit, _ts(now))
    return [_row(record) for record in records]


async def _transition(
    pool: asyncpg.Pool,
    message_id: str,
    *,
    set_sql: str,
    where_status: tuple[str, ...],
    event: str,
    detail: str | None,
    extra: list[Any],
    now: float | None,
) -> bool:
    # $1 message id, $2 now, $3 event detail, $4.. the caller's values.
    sql = f"""
    WITH upd AS (
        UPDATE outbox SET {set_sql}, updated_at = {_NOW.format(n=2)}
        WHERE message_id = $1 AND status = ANY(${4 + len(extra)}::text[])
        RETURNING message_id
    ), ev AS (
        INSERT INTO message_events (message_id, status, at, detail)
        SELECT message_id, '{event}', {_NOW.format(n=2)}, $3 FROM upd
    )
    SELECT count(*) FROM upd
    """
    changed = await pool.fetchval(
        sql, message_id, _ts(now), detail, *extra, list(where_status)
    )
    return changed > 0


async def mark_sent(
    pool: asyncpg.Pool, message_id: str, smtp_response: str, now: float | None = None
) -> bool:
    """Record that the relay accepted the message; False if it was already sent or unknown."""
    return await _transition(
        pool,
        message_id,
        # Even a row the reaper re-queued meanwhile was sent: the relay said so.
        set_sql=f"status = 'sent', sent_at = {_NOW.format(n=2)}, smtp_response = $4,"
        " claimed_at = NULL",
        where_status=("queued", "sending", "failed"),
        event="sent",
        detail=smtp_response,
        extra=[smtp_response],
        now=now,
    )


async def mark_retry(
    pool: asyncpg.Pool,
    message_id: str,
    error: str,
    delay_seconds: float,
    now: float | None = None,
) -> bool:
    """Put a claimed row back in the queue, due `delay_seconds` from now, keeping the error."""
    return await _transition(
        pool,
        message_id,
        set_sql="status = 'queued', claimed_at = NULL, last_error = $4,"
        f" next_attempt_at = {_NOW.format(n=2)} + make_interval(secs => $5)",
        where_status=("sending",),
        event="retry",
        detail=f"{error} (next attempt in {delay_seconds:.0f}s)",
        extra=[error, float(delay_seconds)],
        now=now,
    )


async def mark_failed(
    pool: asyncpg.Pool, message_id: str, reason: str, now: float | None = None
) -> bool:
    """Fail a queued or claimed row for good, with the reason in `last_error` and the timeline."""
    return await _transition(
        pool,
        message_id,
        set_sql="status = 'failed', claimed_at = NULL, last_error = $4",
        where_status=("queued", "sending"),
        event="failed",
        detail=reason,
        extra=[reason],
        now=now,
    )


_REAP = f"""
WITH upd AS (
    UPDATE outbox
    SET status = 'queued', claimed_at = NULL, next_attempt_at = {_NOW.format(n=2)},
        updated_at = {_NOW.format(n=2)}
    WHERE status = 'sending'
      AND claimed_at < {_NOW.format(n=2)} - make_interval(secs => $1)
    RETURNING message_id
), ev AS (
    INSERT INTO message_events (message_id, status, at, detail)
    SELECT message_id, 'requeued', {_NOW.format(n=2)}, 'claim expired; the sender stopped' FROM upd
)
SELECT count(*) FROM upd
"""


async def reap_stuck(
    pool: asyncpg.Pool, older_than_seconds: float, now: float | None = None
) -> int:
    """Re-queue rows claimed longer ago than `older_than_seconds` (their sender died); returns how many."""
    return await pool.fetchval(_REAP, float(older_than_seconds), _ts(now))


async def message_status(pool: asyncpg.Pool, message_id: str) -> MessageStatus | None:
    """A message's outbox row and status timeline, or None for an unknown id."""
    async with pool.acquire() as conn:
        record = await conn.fetchrow(
            f"SELECT {_ROW_COLUMNS} FROM outbox WHERE message_id = $1", message_id
        )
        if record is None:
            return None
        events = await conn.fetch(
            "SELECT status, at, detail FROM message_events WHERE message_id = $1 ORDER BY id",
            message_id,
        )
    return MessageStatus(
        row=_row(record),
        events=[
            MessageEvent(status=e["status"], at=e["at"].timestamp(), detail=e["detail"])
            for e in events
        ],
    )


async def mark_skipped(
    pool: asyncpg.Pool, message_id: str, event: str, reason: str, now: float | None = None
) -> bool:
    """Fail a claimed row without sending it (event: suppressed, unsubscribed, dropped)."""
    if not event.isidentifier():
        raise ValueError(f"event {event!r} must be a plain word")
    return await _transition(
        pool,
        message_id,
        set_sql="status = 'failed', claimed_at = NULL, last_error = $4",
        where_status=("queued", "sending"),
        event=event,
        detail=reason,
        extra=[reason],
        now=now,
    )


async def defer(
    pool: asyncpg.Pool, message_id: str, until: float, reason: str, now: float | None = None
) -> bool:
    """Put a claimed row back, due at `until`, without counting the claim as an attempt."""
    return await _transition(
        pool,
        message_id,
        set_sql="status = 'queued', claimed_at = NULL, attempts = greatest(0, attempts - 1),"
        " next_attempt_at = to_timestamp($4)",
        where_status=("sending",),
        event="deferred",
        detail=reason,
        extra=[float(until)],
        now=now,
    )


_RELEASE = f"""
WITH upd AS (
    UPDATE outbox
    SET status = 'queued', claimed_at = NULL, attempts = greatest(0, attempts - 1),
        updated_at = {_NOW.format(n=2)}
    WHERE message_id = ANY($1::text[]) AND status = 'sending'
    RETURNING message_id
), ev AS (
    INSERT INTO message_events (message_id, status, at, detail)
    SELECT message_id, 'released', {_NOW.format(n=2)}, 'the sender stopped before trying it'
    FROM upd
)
SELECT count(*) FROM upd
"""


async def release(
    pool: asyncpg.Pool, message_ids: list[str], now: float | None = None
) -> int:
    """Give back claimed rows that were never tried (shutdown), due at once; returns how many."""
    if not message_ids:
        return 0
    return await pool.fetchval(_RELEASE, message_ids, _ts(now))


_RECENT_MARKETING = """
SELECT extract(epoch FROM coalesce(sent_at, claimed_at))::float8 AS at
FROM outbox
WHERE person = $1 AND message_id <> $2
  AND (command->>'transactional')::boolean IS NOT TRUE
  AND ((status = 'sent' AND sent_at > $3)
       -- Rows claimed before this one count too, so two loops cannot both take the last slot.
       OR (status = 'sending' AND (claimed_at, message_id) < ($4::timestamptz, $2)))
"""


async def recent_marketing_sends(
    pool: asyncpg.Pool, person: str, message_id: str, since: float, claimed_at: float
) -> list[float]:
    """Send times of the person's marketing messages since `since`, other than `message_id`."""
    records = await pool.fetch(
        _RECENT_MARKETING, person, message_id, _ts(since), _ts(claimed_at)
    )
    return [r["at"] for r in records]


async def record_event(
    pool: asyncpg.Pool,
    message_id: str,
    status: str,
    detail: str | None = None,
    now: float | None = None,
) -> None:
    """Add an engagement step (opened, clicked, unsubscribed, ...) to a message's timeline."""
    await pool.execute(
        "INSERT INTO message_events (message_id, status, at, detail)"
        " VALUES ($1, $2, coalesce($3::timestamptz, now()), $4)",
        message_id, status, _ts(now), detail,
    )
