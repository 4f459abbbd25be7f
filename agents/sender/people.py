"""Read a person's profile from the `people` projection (migration 010), when it exists."""

from __future__ import annotations

import json
from typing import Any

import asyncpg
from pydantic import BaseModel, ConfigDict, Field

from schemas.errors import StateError


class PeopleTableMissing(StateError, RuntimeError):
    """The `people` projection is not in this database yet (run `nudge migrate`)."""


class PersonProfile(BaseModel):
    """A person as the projection shows them."""

    model_config = ConfigDict(frozen=True)

    person: str
    email: str | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)
    suppressed: bool = False
    unsubscribed: bool = False


async def person_profile(pool: asyncpg.Pool, person: str) -> PersonProfile | None:
    """The person's profile, None if unknown; PeopleTableMissing without the projection."""
    if await pool.fetchval("SELECT to_regclass('people')") is None:
        raise PeopleTableMissing(
            "the `people` table does not exist in this database; run `nudge migrate` with a "
            "version that has the people projection, or pass --attributes JSON instead"
        )
    record = await pool.fetchrow(
        "SELECT person, email, attributes, suppressed, unsubscribed FROM people WHERE person = $1",
        person,
    )
    if record is None:
        return None
    attributes = record["attributes"]
    if isinstance(attributes, str):
        attributes = json.loads(attributes)
    return PersonProfile(
        person=record["person"], email=record["email"], attributes=attributes or {},
        suppressed=record["suppressed"], unsubscribed=record["unsubscribed"],
    )
