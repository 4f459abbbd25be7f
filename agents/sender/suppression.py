"""The global suppression list in PostgreSQL: addresses Nudge never sends to."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache

import asyncpg
from pydantic import BaseModel, ConfigDict

from schemas.addresses import AddressError, EmailAddress, parse_email


class Suppression(BaseModel):
    """One suppressed address, why, and since when (Unix seconds)."""

    model_config = ConfigDict(frozen=True)

    address: str
    reason: str
    at: float
    detail: str | None = None


@lru_cache(maxsize=8192)
def recipient(address: str) -> EmailAddress:
    """`address` parsed strictly (schemas/addresses.py); cached: a send parses its address
    when checked and again when built, and the IDNA step is the costly part."""
    return parse_email(address)


def normalize_address(address: str) -> str:
    """The form addresses are stored and compared in (schemas/addresses.py: ASCII, lower case).

    Raises AddressError for anything but exactly one valid address, so no spelling, case or
    list syntax can slip past the list.
    """
    return recipient(address.strip()).normalized


def _lookup_form(address: str) -> str:
    # An entry stored before addresses were checked is only lower-cased: still findable.
    try:
        return normalize_address(address)
    except AddressError:
        return address.strip().lower()


def _ts(now: float | None) -> datetime | None:
    return None if now is None else datetime.fromtimestamp(now, tz=UTC)


async def suppress(
    pool: asyncpg.Pool, address: str, reason: str, *, detail: str | None = None,
    now: float | None = None,
) -> bool:
    """Add `address` (reason: hard_bounce, complaint, manual, ...); False if it already was."""
    status = await pool.execute(
        "INSERT INTO suppressions (address, reason, at, detail)"
        " VALUES ($1, $2, coalesce($3::timestamptz, now()), $4)"
        " ON CONFLICT (address) DO NOTHING",
        normalize_address(address), reason, _ts(now), detail,
    )
    return status.endswith(" 1")


async def unsuppress(pool: asyncpg.Pool, address: str) -> bool:
    """Remove `address` from the list; False if it was not on it."""
    status = await pool.execute(
        "DELETE FROM suppressions WHERE address = $1", _lookup_form(address)
    )
    return status.endswith(" 1")


async def suppression_of(pool: asyncpg.Pool, address: str) -> Suppression | None:
    """The suppression of `address`, or None when it may receive email."""
    record = await pool.fetchrow(
        "SELECT address, reason, at, detail FROM suppressions WHERE address = $1",
        _lookup_form(address),
    )
    if record is None:
        return None
    return Suppression(
        address=record["address"], reason=record["reason"], at=record["at"].timestamp(),
        detail=record["detail"],
    )


async def list_suppressions(pool: asyncpg.Pool, *, limit: int = 1000) -> list[Suppression]:
    """The most recent suppressions first."""
    records = await pool.fetch(
        "SELECT address, reason, at, detail FROM suppressions ORDER BY at DESC LIMIT $1", limit
    )
    return [
        Suppression(address=r["address"], reason=r["reason"], at=r["at"].timestamp(),
                    detail=r["detail"])
        for r in records
    ]
