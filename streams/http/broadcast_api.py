"""Broadcast endpoints: `POST /api/v1/broadcasts` {campaign, segment, rate?, dry_run?} (the send key)
and `GET /api/v1/broadcasts/{id}` (progress per partition; the read key)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import asyncpg
from aiohttp import web

from agents.broadcast.service import BroadcastError, count_members, plan_broadcast, scan_status, start_scan
from agents.person.campaign_files import load_definitions
from schemas.app_api import BroadcastBody
from schemas.campaigns import CampaignFileError
from streams.database import get_pool
from streams.http.errors import ApiError
from streams.http.operations import Call, Operation
from streams.http.read_api import read_key
from streams.http.transactional_api import send_key
from streams.settings import Settings

PoolFactory = Callable[[], Awaitable[asyncpg.Pool]]
TAG = "Broadcasts"


def broadcast_api_operations(settings: Settings, *, pool_factory: PoolFactory | None = None) -> list[Operation]:
    """The broadcast routes."""
    get_db: PoolFactory = pool_factory or (lambda: get_pool(settings))

    async def create(call: Call) -> web.Response:
        body: BroadcastBody = call.body
        try:
            found = load_definitions(settings.campaigns_dir)
        except CampaignFileError as exc:
            raise ApiError(409, f"the campaign files are invalid, fix them first: {exc}") from exc
        campaign = next((c for c in found.campaigns if c.id == body.campaign), None)
        if campaign is None:
            raise ApiError(404, f"no campaign {body.campaign!r}", field="campaign")
        if body.segment not in {s.id for s in found.segments}:
            raise ApiError(404, f"no segment {body.segment!r}", field="segment")
        try:
            starts = plan_broadcast(campaign, body.segment, settings.partitions, rate=body.rate)
        except BroadcastError as exc:
            raise ApiError(400, str(exc)) from exc
        pool = await get_db()
        members = await count_members(pool, body.segment)
        if body.dry_run:
            return web.json_response({"dry_run": True, "members": members})
        await start_scan(pool, settings, starts)
        return web.json_response({"id": starts[0].id, "members": members}, status=202)

    async def progress(call: Call) -> web.Response:
        status = await scan_status(await get_db(), call.path("id"))
        if status is None:
            raise ApiError(404, f"no broadcast {call.path('id')!r}")
        return web.json_response({**status.model_dump(mode="json"), "done": status.done})

    return [
        Operation("POST", "/api/v1/broadcasts", create, "Send a campaign once to a segment", TAG,
                  auth=send_key(settings), body=BroadcastBody, success=202,
                  errors=(400, 401, 404, 409, 503)),
        Operation("GET", "/api/v1/broadcasts/{id}", progress, "A broadcast's progress per partition", TAG,
                  auth=read_key(settings), errors=(400, 401, 404, 503)),
    ]
