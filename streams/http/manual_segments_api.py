"""Manual segments over HTTP, Customer.io's Track API way: `POST /api/v1/segments/{id}/add_customers`
and `.../remove_customers` with `{"ids": [...]}`. Each id becomes a `SegmentMembership` input on
that person's partition; the person agent applies it (and starts segment-triggered journeys).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from agents.person.campaign_files import read_campaign_dir
from schemas.inputs import Input, SegmentMembership
from streams.http.auth import check_basic_auth
from streams.http.bodies import parse_json_object, read_bounded
from streams.http.errors import ApiError
from streams.http.rate_limit import RateLimiter
from streams.http.track_api import MAX_BODY_BYTES, Publish, customer_id
from streams.settings import Settings

# Customer.io's documented limit per request.
MAX_IDS = 1000


def membership_inputs(segment: str, body: dict[str, Any], *, member: bool, now: float) -> list[Input]:
    """The `SegmentMembership` inputs of an add/remove body `{"ids": [...]}` (ids: strings or numbers)."""
    ids = body.get("ids")
    if not isinstance(ids, list) or not ids:
        raise ApiError(400, 'send {"ids": ["42", ...]}: a non-empty list of customer ids')
    if len(ids) > MAX_IDS:
        raise ApiError(400, f"at most {MAX_IDS} ids per request (got {len(ids)})")
    people = []
    for value in ids:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            raise ApiError(400, f"every id must be a string or a number, got {value!r:.40}")
        people.append(customer_id(value, "id"))
    # One input per person even when an id is repeated.
    return [
        SegmentMembership(person=p, at=now, segment=segment, member=member)
        for p in dict.fromkeys(people)
    ]


def check_manual(settings: Settings, segment: str) -> None:
    """Raise 404 for an undefined segment and 400 for one kept by a condition (not manual)."""
    found = read_campaign_dir(settings.campaigns_dir)
    definition = next((s for s in found.segments if s.id == segment), None)
    if definition is None:
        raise ApiError(
            404, f"no segment {segment!r}: define it in segments/{segment}.yaml with `manual: true`"
        )
    if not definition.manual:
        raise ApiError(
            400, f"segment {segment!r} is kept by its `when` condition; only `manual: true` segments take ids"
        )


def manual_segment_routes(
    publish: Publish,
    settings: Settings,
    clock: Callable[[], float] = time.time,
    *,
    limiter: RateLimiter | None = None,
) -> list[web.RouteDef]:
    """`add_customers` and `remove_customers`, HTTP Basic site_id:api_key like the Track API."""
    credential = f"track:{settings.site_id}"

    def change(member: bool) -> Callable[[web.Request], Any]:
        async def handle(request: web.Request) -> web.Response:
            check_basic_auth(request.headers.get("Authorization"), settings.site_id, settings.api_key)
            if limiter is not None:
                limiter.take(credential)
            id_type = request.query.get("id_type", "id")
            if id_type != "id":
                raise ApiError(400, f"id_type={id_type!r}: Nudge identifies people by `id` only")
            body = parse_json_object(await read_bounded(request, MAX_BODY_BYTES))
            segment = request.match_info["id"]
            inputs = membership_inputs(segment, body, member=member, now=clock())
            check_manual(settings, segment)
            await publish(inputs)
            return web.json_response({})

        return handle

    return [
        web.post("/api/v1/segments/{id}/add_customers", change(True)),
        web.post("/api/v1/segments/{id}/remove_customers", change(False)),
    ]
