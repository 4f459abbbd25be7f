"""Per-person subscription topics in PostgreSQL (`subscription_preferences`); no row = subscribed."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

import asyncpg


async def is_subscribed(pool: asyncpg.Pool, person: str, topic: str) -> bool:
    """False only when the person turned `topic` off."""
    value = await pool.fetchval(
        "SELECT subscribed FROM subscription_preferences WHERE person = $1 AND topic = $2",
        person, topic,
    )
    return value is not False


async def preferences_of(pool: asyncpg.Pool, person: str) -> dict[str, bool]:
    """Every topic the person has a stored choice for."""
    records = await pool.fetch(
        "SELECT topic, subscribed FROM subscription_preferences WHERE person = $1", person
    )
    return {r["topic"]: r["subscribed"] for r in records}


async def set_preferences(
    pool: asyncpg.Pool, person: str, choices: Mapping[str, bool], *, now: float | None = None
) -> None:
    """Store the person's choice for each topic given (others keep theirs)."""
    at = None if now is None else datetime.fromtimestamp(now, tz=UTC)
    await pool.execute(
        "INSERT INTO subscription_preferences (person, topic, subscribed, updated_at)"
        " SELECT $1, t, s, coalesce($4::timestamptz, now())"
        " FROM unnest($2::text[], $3::bool[]) AS u(t, s)"
        " ON CONFLICT (person, topic) DO UPDATE"
        " SET subscribed = excluded.subscribed, updated_at = excluded.updated_at",
        person, list(choices), [bool(v) for v in choices.values()], at,
    )
