"""Manual segments over HTTP, Customer.io's Track API way: `POST /api/v1/segments/{id}/add_customers`
and `.../remove_customers` with `{"ids": [...]}`. Each id becomes a `SegmentMembership` input on
that person's partition; the person agent applies it (and starts segment-triggered journeys).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from agents.person.campaign_files import read_campaign_dir
from schemas.inputs import Input, SegmentMembership
from schemas.track_api import SegmentIdsBody, SegmentIdsQuery
from streams.http.auth import TrackBasic
from streams.http.errors import ApiError
from streams.http.operations import Call, Operation
from streams.http.publisher import Publish
from streams.http.track_api import MAX_BODY_BYTES
from streams.settings import Settings


def membership_inputs(segment: str, body: SegmentIdsBody, *, member: bool, now: float) -> list[Input]:
    """The `SegmentMembership` inputs of an add/remove body, one per person even when repeated."""
    return [
        SegmentMembership(person=p, at=now, segment=segment, member=member)
        for p in dict.fromkeys(body.ids)
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


def manual_segment_operations(
    publish: Publish, settings: Settings, clock: Callable[[], float] = time.time
) -> list[Operation]:
    """`add_customers` and `remove_customers`, with the Track API's credentials."""
    auth = TrackBasic(settings.site_id, settings.api_key.get_secret_value())

    def change(member: bool) -> Callable[[Call], Awaitable[web.Response]]:
        async def handle(call: Call) -> web.Response:
            segment = call.path("id")
            inputs = membership_inputs(segment, call.body, member=member, now=clock())
            check_manual(settings, segment)
            await publish(inputs)
            return web.json_response({})

        return handle

    return [
        Operation("POST", f"/api/v1/segments/{{id}}/{name}", change(member), summary, "Manual segments",
                  auth=auth, body=SegmentIdsBody, query=SegmentIdsQuery, body_limit=MAX_BODY_BYTES,
                  errors=(400, 401, 404, 413, 429, 503))
        for name, member, summary in (
            ("add_customers", True, "Add people to a manual segment"),
            ("remove_customers", False, "Remove people from a manual segment"),
        )
    ]
