"""Customer.io Track API v1: each request body turned into inputs on the person's partition.

Answers as Customer.io does: 200 with `{}` on success, `{"meta": {"error": "..."}}` with a 4xx
status and a message naming the field otherwise. Bodies are the models of `schemas/track_api.py`.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from schemas.inputs import (
    ANONYMOUS_PREFIX,
    Delete,
    Devices,
    Identify,
    Input,
    MergeInto,
    Suppress,
    Track,
    Unsubscribe,
    anonymous_person,
)
from schemas.track_api import (
    AnonymousTrackBody,
    DeviceBody,
    IdentifyBody,
    MergeBody,
    TrackBody,
)
from streams.http.auth import TrackBasic
from streams.http.errors import ApiError
from streams.http.operations import Call, Operation
from streams.http.publisher import Publish

MAX_ID_BYTES = 150
# Room for 100,000 bytes of event data plus the envelope around it.
MAX_BODY_BYTES = 256 * 1024
TAG = "Track API v1 (Customer.io)"


def identify_inputs(person: str, body: IdentifyBody, now: float) -> list[Input]:
    """An identify as inputs: the Identify, and an Unsubscribe when `unsubscribed` is sent."""
    inputs: list[Input] = [
        Identify(
            person=person,
            at=now,
            attributes=body.attributes(),
            anonymous_id=body.anonymous_id,
            update_only=body.update,
        )
    ]
    if body.unsubscribed is not None:
        # Kept as an attribute too (segments read it); the Unsubscribe moves the
        # subscription state that gates marketing sends.
        inputs.append(Unsubscribe(person=person, at=now, unsubscribed=body.unsubscribed))
    return inputs


def track_input(person: str, body: TrackBody, now: float) -> Track:
    """An event, page view or screen view of `person`."""
    return Track(
        person=person,
        at=body.timestamp if body.timestamp is not None else now,
        name=body.name,
        data=body.data or {},
        type=body.type,
        event_id=body.id,
    )


def anonymous_track_input(body: AnonymousTrackBody, now: float) -> Track:
    """`POST /api/v1/events`: an event of the anonymous person `anon:<anonymous_id>`."""
    if len(body.anonymous_id.encode()) > MAX_ID_BYTES - len(ANONYMOUS_PREFIX):
        raise ApiError(400, f"`anonymous_id` is longer than {MAX_ID_BYTES - len(ANONYMOUS_PREFIX)} bytes",
                       field="anonymous_id")
    return track_input(anonymous_person(body.anonymous_id), body, now)


def device_input(person: str, body: DeviceBody, now: float) -> Devices:
    """`PUT .../devices`: add (or update) the device."""
    device = body.device
    return Devices(
        person=person,
        at=now,
        action="add",
        device_id=device.id,
        platform=device.platform,
        last_used=device.last_used,
        attributes=device.all_attributes(),
    )


def merge_input(body: MergeBody, now: float) -> MergeInto:
    """`POST /api/v1/merge_customers`: the secondary person is merged into the primary."""
    return MergeInto(person=body.secondary.id, at=now, into=body.primary.id)


def _check_anonymous_id(body: IdentifyBody) -> None:
    if body.anonymous_id is not None and len(body.anonymous_id.encode()) > MAX_ID_BYTES - len(ANONYMOUS_PREFIX):
        raise ApiError(400, f"`anonymous_id` is longer than {MAX_ID_BYTES - len(ANONYMOUS_PREFIX)} bytes",
                       field="anonymous_id")


def track_api_operations(
    publish: Publish, site_id: str, api_key: str, clock: Callable[[], float] = time.time
) -> list[Operation]:
    """The Track API's routes, publishing through `publish`."""
    auth = TrackBasic(site_id, api_key)

    async def done(inputs: list[Input]) -> web.Response:
        await publish(inputs)
        return web.json_response({})

    async def identify(call: Call) -> web.Response:
        _check_anonymous_id(call.body)
        return await done(identify_inputs(call.path("id"), call.body, clock()))

    async def track(call: Call) -> web.Response:
        return await done([track_input(call.path("id"), call.body, clock())])

    async def anonymous_track(call: Call) -> web.Response:
        return await done([anonymous_track_input(call.body, clock())])

    async def delete(call: Call) -> web.Response:
        return await done([Delete(person=call.path("id"), at=clock())])

    async def add_device(call: Call) -> web.Response:
        return await done([device_input(call.path("id"), call.body, clock())])

    async def remove_device(call: Call) -> web.Response:
        person, device = call.path("id"), call.path("device_id")
        return await done([Devices(person=person, at=clock(), action="remove", device_id=device)])

    async def suppress(call: Call) -> web.Response:
        return await done([Suppress(person=call.path("id"), at=clock(), suppressed=True)])

    async def unsuppress(call: Call) -> web.Response:
        return await done([Suppress(person=call.path("id"), at=clock(), suppressed=False)])

    async def merge(call: Call) -> web.Response:
        return await done([merge_input(call.body, clock())])

    async def region(call: Call) -> web.Response:
        # customerio-node's getAccountRegion(): one self-hosted region.
        base = f"{call.request.scheme}://{call.request.host}"
        return web.json_response({"url": base, "region": "self-hosted", "environment_id": site_id})

    def op(method: str, path: str, handler: Callable[[Call], Awaitable[web.Response]], summary: str,
           body: type | None = None) -> Operation:
        return Operation(method, path, handler, summary, TAG, auth=auth, body=body,
                         body_limit=MAX_BODY_BYTES, errors=(400, 401, 413, 429, 503))

    return [
        op("PUT", "/api/v1/customers/{id}", identify, "Identify: create or update a person", IdentifyBody),
        op("DELETE", "/api/v1/customers/{id}", delete, "Delete a person"),
        op("POST", "/api/v1/customers/{id}/events", track, "Track an event, page or screen view", TrackBody),
        op("POST", "/api/v1/events", anonymous_track, "Track an anonymous event", AnonymousTrackBody),
        op("PUT", "/api/v1/customers/{id}/devices", add_device, "Add or update a device", DeviceBody),
        op("DELETE", "/api/v1/customers/{id}/devices/{device_id}", remove_device, "Remove a device"),
        op("POST", "/api/v1/customers/{id}/suppress", suppress, "Suppress a person"),
        op("POST", "/api/v1/customers/{id}/unsuppress", unsuppress, "Unsuppress a person"),
        op("POST", "/api/v1/merge_customers", merge, "Merge a secondary person into a primary", MergeBody),
        op("GET", "/api/v1/accounts/region", region, "The region to send to (always this server)"),
    ]
