"""The read side over HTTP: activity, the event catalog, profiles, campaign metrics and segments.

Read from the projector's PostgreSQL tables (`agents/projector/queries.py`), so an answer lags
the input topic by the projector's batch (tens of milliseconds when the worker keeps up).
The read key opens these routes (`Authorization: Bearer <NUDGE_READ_API_KEY>`); the Track API
key does not. Times are Unix seconds.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from aiohttp import web

from agents.person.campaign_files import read_campaign_dir
from agents.projector import queries
from schemas.app_api import ActivityQuery, MembersQuery
from streams.database import get_pool
from streams.http.auth import AppKey
from streams.http.errors import ApiError
from streams.http.operations import Call, Operation
from streams.settings import Settings, reveal

PoolFactory = Callable[[], Awaitable[asyncpg.Pool]]
TAG = "Read side"
READ_OPENS = "profiles, activity, events, metrics, segments, message status, the suppression list, broadcast progress"


def read_key(settings: Settings) -> AppKey:
    """The read key's credential scheme."""
    return AppKey("readKey", "NUDGE_READ_API_KEY", reveal(settings.read_api_key), settings.site_id, READ_OPENS)


def read_api_operations(settings: Settings, *, pool_factory: PoolFactory | None = None) -> list[Operation]:
    """`GET` routes of the read side, opened by the read key."""
    get_db: PoolFactory = pool_factory or (lambda: get_pool(settings))
    auth = read_key(settings)

    def read(handler: Callable[[Call, asyncpg.Pool], Awaitable[Any]]) -> Callable[[Call], Awaitable[web.Response]]:
        async def handle(call: Call) -> web.Response:
            return web.json_response(await handler(call, await get_db()))

        return handle

    async def activity(call: Call, pool: asyncpg.Pool) -> dict[str, Any]:
        query: ActivityQuery = call.query
        rows = await queries.recent_activity(
            pool, person=query.person, kind=query.kind, limit=query.limit, before=query.before
        )
        return {
            "activity": [r.model_dump(mode="json") for r in rows],
            # Pass as `before` for the next (older) page; null when this page was the last.
            "next_before": rows[-1].id if len(rows) == query.limit else None,
        }

    async def events(call: Call, pool: asyncpg.Pool) -> dict[str, Any]:
        return {"events": [e.model_dump(mode="json") for e in await queries.event_catalog(pool)]}

    async def profile(call: Call, pool: asyncpg.Pool) -> dict[str, Any]:
        person = call.path("id")
        found = await queries.read_profile(pool, person)
        if found is None:
            raise ApiError(404, f"no customer {person!r}: nothing of theirs has been projected yet")
        return found.model_dump(mode="json")

    async def metrics(call: Call, pool: asyncpg.Pool) -> dict[str, Any]:
        return {"campaigns": [m.model_dump(mode="json") for m in await queries.campaign_metrics(pool)]}

    async def segments(call: Call, pool: asyncpg.Pool) -> dict[str, Any]:
        counts = {c.id: c.members for c in await queries.segment_counts(pool)}
        # Defined segments show with 0 members too; problems in the files are `nudge campaigns check`'s.
        defined = {s.id: s.manual for s in read_campaign_dir(settings.campaigns_dir).segments}
        return {
            "segments": [
                {"id": s, "members": counts.get(s, 0), "defined": s in defined, "manual": defined.get(s, False)}
                for s in sorted(set(counts) | set(defined))
            ]
        }

    async def members(call: Call, pool: asyncpg.Pool) -> dict[str, Any]:
        query: MembersQuery = call.query
        segment = call.path("id")
        rows = await queries.segment_members(pool, segment, limit=query.limit, after=query.after)
        return {
            "segment": segment,
            "members": [r.model_dump(mode="json") for r in rows],
            # Pass as `after` for the next page; null when this page was the last.
            "next_after": rows[-1].person if len(rows) == query.limit else None,
        }

    def op(path: str, handler: Callable[[Call, asyncpg.Pool], Awaitable[Any]], summary: str,
           query: type | None = None, errors: tuple[int, ...] = (400, 401, 503)) -> Operation:
        return Operation("GET", path, read(handler), summary, TAG, auth=auth, query=query, errors=errors)

    return [
        op("/api/v1/activity", activity, "Latest inputs and what they changed, newest first", ActivityQuery),
        op("/api/v1/events", events, "The event catalog: names, properties and their types"),
        op("/api/v1/customers/{id}/profile", profile, "A person's profile and timeline",
           errors=(400, 401, 404, 503)),
        op("/api/v1/campaigns/metrics", metrics, "Per campaign: entered, in progress, exited, converted, per step"),
        op("/api/v1/segments", segments, "Segments and their sizes"),
        op("/api/v1/segments/{id}/members", members, "Members of a segment", MembersQuery),
    ]
