"""Broadcast endpoints: `POST /api/v1/broadcasts` {campaign, segment, rate?, dry_run?} and
`GET /api/v1/broadcasts/{id}` (progress per partition). HTTP Basic site_id:api_key."""

from __future__ import annotations

from typing import Any

import asyncpg
from aiohttp import web

from agents.broadcast.plan import BroadcastError, plan_broadcast
from agents.broadcast.publish import scans_topic, start_scan
from agents.broadcast.store import count_members, scan_status
from agents.person.campaign_files import load_definitions
from schemas.campaigns import CampaignFileError
from streams.database import create_pool
from streams.http.auth import check_basic_auth
from streams.http.errors import ApiError
from streams.settings import Settings


def broadcast_api_routes(settings: Settings) -> list[web.RouteDef]:
    """The broadcast routes; a PostgreSQL pool is opened on first use."""
    pool: dict[str, asyncpg.Pool] = {}

    async def get_pool() -> asyncpg.Pool:
        if "pool" not in pool:
            pool["pool"] = await create_pool(settings.database_url, settings.app_id, max_size=2)
        return pool["pool"]

    async def create(request: web.Request) -> web.Response:
        check_basic_auth(request.headers.get("Authorization"), settings.site_id, settings.api_key)
        try:
            body: Any = await request.json()
        except ValueError as exc:
            raise ApiError(400, "the body must be JSON: {campaign, segment}") from exc
        if not isinstance(body, dict) or not isinstance(body.get("campaign"), str) or not isinstance(body.get("segment"), str):
            raise ApiError(400, "send {\"campaign\": ID, \"segment\": ID} (and optionally rate, dry_run)")
        try:
            found = load_definitions(settings.campaigns_dir)
        except CampaignFileError as exc:
            raise ApiError(400, f"the campaign files are invalid: {exc}") from exc
        campaign = next((c for c in found.campaigns if c.id == body["campaign"]), None)
        if campaign is None:
            raise ApiError(404, f"no campaign {body['campaign']!r}")
        if body["segment"] not in {s.id for s in found.segments}:
            raise ApiError(404, f"no segment {body['segment']!r}")
        rate = body.get("rate")
        try:
            starts = plan_broadcast(campaign, body["segment"], settings.partitions, rate=float(rate) if rate else None)
        except BroadcastError as exc:
            raise ApiError(400, str(exc)) from exc
        members = await count_members(await get_pool(), body["segment"])
        if body.get("dry_run"):
            return web.json_response({"dry_run": True, "members": members})
        await start_scan(await get_pool(), settings.kafka_bootstrap, scans_topic(settings.app_id), starts)
        return web.json_response({"id": starts[0].id, "members": members}, status=202)

    async def progress(request: web.Request) -> web.Response:
        check_basic_auth(request.headers.get("Authorization"), settings.site_id, settings.api_key)
        status = await scan_status(await get_pool(), request.match_info["id"])
        if status is None:
            raise ApiError(404, f"no broadcast {request.match_info['id']!r}")
        return web.json_response({**status.model_dump(mode="json"), "done": status.done})

    return [web.post("/api/v1/broadcasts", create), web.get("/api/v1/broadcasts/{id}", progress)]
