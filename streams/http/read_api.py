"""The read side over HTTP: activity, the event catalog, profiles, campaign metrics and segments.

Read from the projector's PostgreSQL tables (`agents/projector/queries.py`), so an answer lags
the input topic by the projector's batch (tens of milliseconds when the worker keeps up).
HTTP Basic site_id:api_key, like the Track API. Times are Unix seconds.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from aiohttp import web

from agents.person.campaign_files import read_campaign_dir
from agents.projector import queries
from streams.database import DatabaseUnavailable, get_pool
from streams.http.auth import check_basic_auth
from streams.http.errors import ApiError
from streams.settings import Settings

PoolFactory = Callable[[], Awaitable[asyncpg.Pool]]
Handler = Callable[[web.Request], Awaitable[web.Response]]


def int_param(request: web.Request, name: str, default: int | None, low: int, high: int) -> int | None:
    """Query parameter `name` as an integer in [low, high]; `default` when absent; else a 400."""
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ApiError(400, f"`{name}` must be an integer, got {raw[:20]!r}") from exc
    if not low <= value <= high:
        raise ApiError(400, f"`{name}` must be between {low} and {high}, got {value}")
    return value


def limit_param(request: web.Request, default: int) -> int:
    """The `limit` query parameter (1 to queries.MAX_LIMIT), `default` when absent."""
    value = int_param(request, "limit", default, 1, queries.MAX_LIMIT)
    return default if value is None else value


def read_api_routes(settings: Settings, *, pool_factory: PoolFactory | None = None) -> list[web.RouteDef]:
    """`GET` routes of the read side, authorized like the Track API."""
    get_db: PoolFactory = pool_factory or (lambda: get_pool(settings))

    def read(handler: Callable[[web.Request, asyncpg.Pool], Awaitable[Any]]) -> Handler:
        async def handle(request: web.Request) -> web.Response:
            check_basic_auth(request.headers.get("Authorization"), settings.site_id, settings.api_key)
            try:
                pool = await get_db()
                return web.json_response(await handler(request, pool))
            except DatabaseUnavailable as exc:
                raise ApiError(503, str(exc), {"Retry-After": "5"}) from exc
            except asyncpg.UndefinedTableError as exc:
                raise ApiError(503, f"the read models are missing ({exc}); run `nudge migrate`") from exc

        return handle

    async def activity(request: web.Request, pool: asyncpg.Pool) -> dict[str, Any]:
        limit = limit_param(request, 50)
        rows = await queries.recent_activity(
            pool,
            person=request.query.get("person") or None,
            kind=request.query.get("kind") or None,
            limit=limit,
            before=int_param(request, "before", None, 1, 2**63 - 1),
        )
        return {
            "activity": [r.model_dump(mode="json") for r in rows],
            # Pass as `before` for the next (older) page; null when this page was the last.
            "next_before": rows[-1].id if len(rows) == limit else None,
        }

    async def events(request: web.Request, pool: asyncpg.Pool) -> dict[str, Any]:
        return {"events": [e.model_dump(mode="json") for e in await queries.event_catalog(pool)]}

    async def profile(request: web.Request, pool: asyncpg.Pool) -> dict[str, Any]:
        person = request.match_info["id"]
        found = await queries.read_profile(pool, person)
        if found is None:
            raise ApiError(404, f"no customer {person!r}: nothing of theirs has been projected yet")
        return found.model_dump(mode="json")

    async def metrics(request: web.Request, pool: asyncpg.Pool) -> dict[str, Any]:
        return {"campaigns": [m.model_dump(mode="json") for m in await queries.campaign_metrics(pool)]}

    async def segments(request: web.Request, pool: asyncpg.Pool) -> dict[str, Any]:
        counts = {c.id: c.members for c in await queries.segment_counts(pool)}
        # Defined segments show with 0 members too; problems in the files are `nudge campaigns check`'s.
        defined = {s.id: s.manual for s in read_campaign_dir(settings.campaigns_dir).segments}
        return {
            "segments": [
                {"id": s, "members": counts.get(s, 0), "defined": s in defined, "manual": defined.get(s, False)}
                for s in sorted(set(counts) | set(defined))
            ]
        }

    async def members(request: web.Request, pool: asyncpg.Pool) -> dict[str, Any]:
        limit = limit_param(request, 100)
        segment = request.match_info["id"]
        rows = await queries.segment_members(pool, segment, limit=limit, after=request.query.get("after") or None)
        return {
            "segment": segment,
            "members": [r.model_dump(mode="json") for r in rows],
            # Pass as `after` for the next page; null when this page was the last.
            "next_after": rows[-1].person if len(rows) == limit else None,
        }

    return [
        web.get("/api/v1/activity", read(activity)),
        web.get("/api/v1/events", read(events)),
        web.get("/api/v1/customers/{id}/profile", read(profile)),
        web.get("/api/v1/campaigns/metrics", read(metrics)),
        web.get("/api/v1/segments", read(segments)),
        web.get("/api/v1/segments/{id}/members", read(members)),
    ]
