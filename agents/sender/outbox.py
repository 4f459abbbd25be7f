"""The PostgreSQL outbox: insert send commands, lease due rows to delivery loops, record outcomes.

Every function takes an asyncpg pool. Times are Unix seconds; `now=None` means the database's
clock, and a given `now` lets the delivery loop (and tests) run on their own clock.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg

from agents.sender.outcomes import Outcome
from schemas.commands import SendEmail
from schemas.outbox import MessageEvent, MessageStatus, OutboxRow

# PostgreSQL is down, restarting or unreachable: wait and try again, nothing is wrong with the data.
DATABASE_UNREACHABLE: tuple[type[BaseException], ...] = (
    OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError,
    asyncpg.exceptions.OperatorInterventionError,
)

# Big enough to amortise round trips, small enough to keep one statement's arrays modest.
_BATCH = 500

_NOW = "coalesce(${n}::timestamptz, now())"

_ROW_COLUMNS = (
    "message_id, person, to_address, template, campaign_id, campaign_version, journey_id,"
    " step, command, status, attempts, next_attempt_at, claimed_at, last_error, created_at,"
    " updated_at, sent_at, smtp_response, lease_owner, lease_until, priority, rate_slot,"
    " template_version, subject"
)

# Claim order: transactional, then campaign sends, then broadcasts.
TRANSACTIONAL, CAMPAIGN, BROADCAST = 0, 1, 2
BROADCAST_JOURNEY_PREFIX = "broadcast:"


def _ts(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, tz=UTC)


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
        lease_owner=record["lease_owner"],
        lease_until=_secs(record["lease_until"]),
        priority=record["priority"],
        rate_slot=record["rate_slot"],
        template_version=record["template_version"],
        subject=record["subject"],
    )


def _chunks(items: list[Any], size: int) -> Iterable[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def priority_of(command: SendEmail) -> int:
    """Claim order of a send: transactional first, then campaign sends, then broadcasts."""
    if command.transactional:
        return TRANSACTIONAL
    if (command.journey_id or "").startswith(BROADCAST_JOURNEY_PREFIX):
        return BROADCAST
    return CAMPAIGN


def broadcast_of(journey_id: str | None) -> str | None:
    """The broadcast id of a broadcast's journey id (`broadcast:<id>`), else None."""
    if journey_id and journey_id.startswith(BROADCAST_JOURNEY_PREFIX):
        return journey_id[len(BROADCAST_JOURNEY_PREFIX) :]
    return None


# Delivery loops LISTEN here; one channel per schema, so deployments sharing a database
# (a schema each) wake only their own loops.
_CHANNEL_PREFIX = "nudge_outbox_"


async def outbox_channel(conn: asyncpg.Connection) -> str:
    """The NOTIFY channel this connection's outbox announces new rows on."""
    return _CHANNEL_PREFIX + await conn.fetchval("SELECT current_schema()")


_INSERT_SENDS = f"""
WITH ins AS (
    INSERT INTO outbox (message_id, person, to_address, template, campaign_id,
                        campaign_version, journey_id, step, command, priority,
                        next_attempt_at, created_at, updated_at)
    SELECT u.m, u.p, u.t, u.tpl, u.c, u.cv, u.j, u.s, u.cmd::jsonb, u.pr,
           {_NOW.format(n=12)}, {_NOW.format(n=12)}, {_NOW.format(n=12)}
    FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                $7::text[], $8::text[], $9::text[], $10::text[], $11::int2[])
         AS u(m, p, t, tpl, c, cv, j, s, cmd, reason, pr)
    ON CONFLICT (message_id) DO NOTHING
    RETURNING message_id
), ev AS (
    INSERT INTO message_events (message_id, status, at, detail)
    SELECT ins.message_id, 'queued', {_NOW.format(n=12)}, nullif(u.reason, '')
    FROM ins JOIN unnest($1::text[], $10::text[]) AS u(m, reason) ON u.m = ins.message_id
), counted AS (SELECT count(*) AS n FROM ins)
SELECT n, CASE WHEN n > 0 THEN pg_notify($13, '') END FROM counted
"""


async def insert_sends(
    pool: asyncpg.Pool, commands: list[SendEmail], *, now: float | None = None
) -> int:
    """Queue send commands and wake the delivery loops; an id already queued is skipped.

    Returns the rows added. All of one call's rows are in when it returns (one statement per
    500): a caller commits its Kafka offsets after this, never before.
    """
    unique: dict[str, SendEmail] = {}
    for command in commands:
        unique.setdefault(command.message_id, command)
    inserted = 0
    async with pool.acquire() as conn:
        channel = await outbox_channel(conn)
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
                [priority_of(c) for c in batch],
                _ts(now),
                channel,
            )
    return inserted


def _due(priority: int, limit: str) -> str:
    return f"""SELECT message_id, next_attempt_at FROM outbox
        WHERE status = 'queued' AND priority = {priority} AND next_attempt_at <= {_NOW.format(n=2)}
        ORDER BY next_attempt_at LIMIT {limit} FOR UPDATE SKIP LOCKED"""


# One statement: each priority's due rows in turn (its own index range), up to the limit.
_CLAIM = f"""
WITH due0 AS ({_due(TRANSACTIONAL, "$1")}),
due1 AS ({_due(CAMPAIGN, "greatest(0, $1 - (SELECT count(*) FROM due0))")}),
due2 AS ({_due(BROADCAST, "greatest(0, $1 - (SELECT count(*) FROM due0) - (SELECT count(*) FROM due1))")}),
due AS (SELECT * FROM due0 UNION ALL SELECT * FROM due1 UNION ALL SELECT * FROM due2),
claimed AS (
    UPDATE outbox o
    SET status = 'sending', attempts = o.attempts + 1, lease_owner = $3,
        lease_until = {_NOW.format(n=2)} + make_interval(secs => $4),
        claimed_at = {_NOW.format(n=2)}, updated_at = {_NOW.format(n=2)}
    FROM due WHERE o.message_id = due.message_id
    RETURNING o.*
), ev AS (
    INSERT INTO message_events (message_id, status, at, detail)
    SELECT message_id, 'sending', {_NOW.format(n=2)}, 'attempt ' || attempts || ' by ' || $3
    FROM claimed
)
SELECT {_ROW_COLUMNS} FROM claimed ORDER BY priority, next_attempt_at, message_id
"""


async def claim(
    pool: asyncpg.Pool,
    owner: str,
    limit: int,
    *,
    lease_seconds: float,
    now: float | None = None,
) -> list[OutboxRow]:
    """Lease up to `limit` due queued rows to `owner` for `lease_seconds` (attempts + 1).

    Rows locked by another claimer are skipped; transactional rows come first, then campaign
    sends, then broadcasts, each in due order.
    """
    records = await pool.fetch(_CLAIM, limit, _ts(now), owner, float(lease_seconds))
    return [_row(record) for record in records]


_RENEW = f"""
UPDATE outbox SET lease_until = {_NOW.format(n=2)} + make_interval(secs => $3)
WHERE message_id = ANY($4::text[]) AND status = 'sending' AND lease_owner = $1
  AND lease_until > {_NOW.format(n=2)}
RETURNING message_id
"""


async def renew_leases(
    pool: asyncpg.Pool, owner: str, message_ids: list[str], lease_seconds: float,
    now: float | None = None,
) -> set[str]:
    """Extend `owner`'s unexpired leases on `message_ids`; return the ids it still holds.

    An expired lease is not renewed even if nobody took the row yet: it is lost, and the
    row goes back to the queue. Rows the loop no longer works on are left to expire.
    """
    if not message_ids:
        return set()
    records = await pool.fetch(_RENEW, owner, _ts(now), float(lease_seconds), message_ids)
    return {r["message_id"] for r in records}


_REQUEUE = f"""
WITH upd AS (
    UPDATE outbox
    SET status = 'queued', lease_owner = NULL, lease_until = NULL, claimed_at = NULL,
        rate_slot = NULL, next_attempt_at = {_NOW.format(n=1)}, updated_at = {_NOW.format(n=1)}
    WHERE status = 'sending' AND {{where}}
    RETURNING message_id, lease_owner
), ev AS (
    INSERT INTO message_events (message_id, status, at, detail)
    SELECT message_id, 'requeued', {_NOW.format(n=1)}, $2 FROM upd
)
SELECT count(*) FROM upd
"""
_REQUEUE_OWNER = _REQUEUE.format(where="lease_owner = $3")
_REQUEUE_EXPIRED = _REQUEUE.format(where=f"lease_until < {_NOW.format(n=1)}")


async def requeue_owned(pool: asyncpg.Pool, owner: str, now: float | None = None) -> int:
    """Re-queue every row `owner` holds (its loop restarted), due at once; returns how many."""
    detail = (
        f"its delivery loop {owner} restarted before recording an outcome; "
        "it may have reached the relay"
    )
    return await pool.fetchval(_REQUEUE_OWNER, _ts(now), detail, owner)


async def requeue_expired(pool: asyncpg.Pool, now: float | None = None) -> int:
    """Re-queue rows whose lease expired (their loop stopped renewing), due at once."""
    detail = "lease expired (its delivery loop stopped); it may have reached the relay"
    return await pool.fetchval(_REQUEUE_EXPIRED, _ts(now), detail)


_RECORD = f"""
WITH u AS (
    SELECT * FROM unnest($3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                         $8::text[], $9::float8[], $10::bool[], $11::float8[], $12::text[],
                         $13::text[])
        AS u(id, status, event, detail, response, error, due, refund, slot, version, subject)
), upd AS (
    UPDATE outbox o
    SET status = u.status,
        sent_at = CASE WHEN u.status = 'sent' THEN {_NOW.format(n=2)} ELSE o.sent_at END,
        smtp_response = coalesce(u.response, o.smtp_response),
        last_error = coalesce(u.error, o.last_error),
        next_attempt_at = coalesce(to_timestamp(u.due), o.next_attempt_at),
        attempts = CASE WHEN u.refund THEN greatest(0, o.attempts - 1) ELSE o.attempts END,
        rate_slot = u.slot,
        template_version = coalesce(u.version, o.template_version),
        subject = coalesce(u.subject, o.subject),
        lease_owner = NULL, lease_until = NULL, claimed_at = NULL,
        updated_at = {_NOW.format(n=2)}
    FROM u
    WHERE o.message_id = u.id
      AND CASE WHEN u.status = 'sent' THEN o.status <> 'sent'
               ELSE o.status = 'sending' AND o.lease_owner = $1 END
    RETURNING o.message_id
), ev AS (
    INSERT INTO message_events (message_id, status, at, detail)
    SELECT upd.message_id, u.event, {_NOW.format(n=2)}, u.detail FROM upd JOIN u ON u.id = upd.message_id
)
SELECT message_id FROM upd
"""


async def record_outcomes(
    pool: asyncpg.Pool, owner: str, outcomes: list[Outcome], now: float | None = None
) -> set[str]:
    """Apply outcomes in one statement per 500, each with its timeline event; return the ids applied.

    A `sent` outcome applies unless the row is already sent (then it was a duplicate); the
    others only while `owner` still holds the row's lease.
    """
    applied: set[str] = set()
    async with pool.acquire() as conn:
        for batch in _chunks(outcomes, _BATCH):
            records = await conn.fetch(
                _RECORD,
                owner,
                _ts(now),
                [o.message_id for o in batch],
                [o.status for o in batch],
                [o.event for o in batch],
                [o.detail for o in batch],
                [o.smtp_response for o in batch],
                [o.error for o in batch],
                [o.due_at for o in batch],
                [o.refund_attempt for o in batch],
                [o.rate_slot for o in batch],
                [o.template_version for o in batch],
                [o.subject for o in batch],
            )
            applied.update(r["message_id"] for r in records)
    return applied


_NEXT_DUE = """
SELECT least(
    (SELECT min(next_attempt_at) FROM outbox WHERE status = 'queued' AND priority = 0),
    (SELECT min(next_attempt_at) FROM outbox WHERE status = 'queued' AND priority = 1),
    (SELECT min(next_attempt_at) FROM outbox WHERE status = 'queued' AND priority = 2))
"""


async def next_due(pool: asyncpg.Pool) -> float | None:
    """When the next queued row falls due (Unix seconds), or None when the queue is empty."""
    return _secs(await pool.fetchval(_NEXT_DUE))


_RECENT_MARKETING = """
SELECT person, message_id, status,
       extract(epoch FROM coalesce(sent_at, claimed_at))::float8 AS at,
       extract(epoch FROM claimed_at)::float8 AS claimed_at
FROM outbox
WHERE person = ANY($1::text[]) AND priority <> 0
  AND ((status = 'sent' AND sent_at > $2) OR status = 'sending')
"""


@dataclass(frozen=True)
class MarketingSend:
    """A marketing message of a person that counts against the frequency limit."""

    person: str
    message_id: str
    status: str
    at: float
    claimed_at: float | None


async def recent_marketing(
    pool: asyncpg.Pool, people: list[str], since: float
) -> list[MarketingSend]:
    """The people's marketing messages sent since `since` or being sent now."""
    records = await pool.fetch(_RECENT_MARKETING, people, _ts(since))
    return [
        MarketingSend(r["person"], r["message_id"], r["status"], r["at"], r["claimed_at"])
        for r in records
    ]


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
