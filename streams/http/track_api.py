"""Customer.io Track API v1: each request body turned into inputs on the person's partition.

Answers as Customer.io does: 200 with `{}` on success, `{"meta": {"error": "..."}}` with a 4xx
status and a message naming the problem otherwise (their wording where they document one).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web
from pydantic import ValidationError

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
from streams.http.auth import check_basic_auth
from streams.http.bodies import read_bounded, parse_json_object
from streams.http.errors import ApiError, api_errors, error_response
from streams.http.rate_limit import RateLimiter

__all__ = [
    "ApiError",
    "api_errors",
    "check_basic_auth",
    "error_response",
    "identify_inputs",
    "track_api_routes",
]

Publish = Callable[[list[Input]], Awaitable[None]]

# Customer.io's documented limits.
MAX_ATTRIBUTES = 300
MAX_ATTRIBUTE_NAME_BYTES = 150
MAX_ATTRIBUTE_VALUE_BYTES = 1000
MAX_EVENT_NAME_BYTES = 100
MAX_EVENT_DATA_BYTES = 100_000
MAX_ID_BYTES = 150
# Room for 100,000 bytes of event data plus the envelope around it.
MAX_BODY_BYTES = 256 * 1024
DEVICE_PLATFORMS = ("ios", "android")
# Keys of an identify body that steer Nudge instead of becoming attributes.
_CONTROL_KEYS = ("_update", "anonymous_id")


def customer_id(value: str, what: str = "customer id") -> str:
    """A person id from a (decoded) path segment, checked against the documented limits."""
    if not value.strip():
        raise ApiError(400, f"the {what} in the path is empty")
    if len(value.encode()) > MAX_ID_BYTES:
        raise ApiError(400, f"the {what} is longer than {MAX_ID_BYTES} bytes")
    return value


def _check_attributes(attributes: dict[str, Any]) -> None:
    if len(attributes) > MAX_ATTRIBUTES:
        raise ApiError(
            400,
            f"cannot identify more than {MAX_ATTRIBUTES} attributes in one request "
            f"(got {len(attributes)})",
        )
    for name, value in attributes.items():
        if not name:
            raise ApiError(400, "attribute name cannot be empty")
        if len(name.encode()) > MAX_ATTRIBUTE_NAME_BYTES:
            raise ApiError(
                400,
                f"attribute name cannot be longer than {MAX_ATTRIBUTE_NAME_BYTES} bytes "
                f"({name[:40]!r}...)",
            )
        if len(orjson.dumps(value)) > MAX_ATTRIBUTE_VALUE_BYTES:
            raise ApiError(
                400,
                f"value for attribute '{name}' cannot be longer than {MAX_ATTRIBUTE_VALUE_BYTES} bytes",
            )


def _optional_string(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise ApiError(400, f"`{key}` must be a non-empty string")
    return value


def identify_inputs(person: str, body: dict[str, Any], now: float) -> list[Input]:
    """An identify body as inputs: the Identify, and an Unsubscribe when `unsubscribed` is sent.

    `_update: true` only updates an existing person; `anonymous_id` folds that anonymous
    person's events into this one; `created_at` must be Unix seconds.
    """
    update_only = body.get("_update", False)
    if not isinstance(update_only, bool):
        raise ApiError(400, "`_update` must be true or false")
    anonymous_id = _optional_string(body, "anonymous_id")
    if anonymous_id is not None and len(anonymous_id.encode()) > MAX_ID_BYTES - len(ANONYMOUS_PREFIX):
        raise ApiError(400, f"`anonymous_id` is longer than {MAX_ID_BYTES - len(ANONYMOUS_PREFIX)} bytes")
    attributes = {k: v for k, v in body.items() if k not in _CONTROL_KEYS}
    _check_attributes(attributes)
    created_at = attributes.get("created_at")
    if created_at is not None and (
        isinstance(created_at, bool) or not isinstance(created_at, (int, float))
    ):
        raise ApiError(400, "`created_at` must be a Unix timestamp (seconds, a number)")
    email = attributes.get("email")
    if email is not None and not isinstance(email, str):
        raise ApiError(400, "`email` must be a string")
    unsubscribed = attributes.get("unsubscribed")
    if unsubscribed is not None and not isinstance(unsubscribed, bool):
        raise ApiError(400, "`unsubscribed` must be true or false")
    inputs: list[Input] = [
        Identify(
            person=person,
            at=now,
            attributes=attributes,
            anonymous_id=anonymous_id,
            update_only=update_only,
        )
    ]
    if unsubscribed is not None:
        # Kept as an attribute too (segments read it); the Unsubscribe moves the
        # subscription state that gates marketing sends.
        inputs.append(Unsubscribe(person=person, at=now, unsubscribed=unsubscribed))
    return inputs


def identify_input(person: str, body: dict[str, Any], now: float) -> Identify:
    """The Identify of an identify body (see `identify_inputs` for everything it yields)."""
    first = identify_inputs(person, body, now)[0]
    assert isinstance(first, Identify)
    return first


def track_input(person: str, body: dict[str, Any], now: float) -> Track:
    """Validate a track body (`name`, `data`, `timestamp`, `id`, `type`) and build the input."""
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ApiError(400, "event name must not be blank (send a non-empty string `name`)")
    if len(name.encode()) > MAX_EVENT_NAME_BYTES:
        raise ApiError(400, f"event name cannot be longer than {MAX_EVENT_NAME_BYTES} bytes")
    data = body.get("data", {})
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ApiError(400, 'event data must be a hash (send "data":{} instead of "data":"")')
    if len(orjson.dumps(data)) > MAX_EVENT_DATA_BYTES:
        raise ApiError(400, f"event data cannot be longer than {MAX_EVENT_DATA_BYTES} bytes")
    timestamp = body.get("timestamp")
    if timestamp is not None and (
        isinstance(timestamp, bool) or not isinstance(timestamp, (int, float))
    ):
        raise ApiError(400, "`timestamp` must be Unix seconds (a number)")
    if timestamp is not None and not 0 <= timestamp < 1e11:
        raise ApiError(400, "`timestamp` must be Unix seconds (between 1970 and 5138)")
    event_id = body.get("id")
    if event_id is not None and not isinstance(event_id, str):
        raise ApiError(400, "`id` must be a string")
    kind = body.get("type", "event")
    if kind not in ("event", "page", "screen"):
        raise ApiError(400, "`type` must be one of event, page, screen")
    try:
        return Track(
            person=person,
            at=float(timestamp) if timestamp is not None else now,
            name=name,
            data=data,
            type=kind,
            event_id=event_id,
        )
    except ValidationError as exc:
        raise ApiError(400, str(exc.errors()[0]["msg"])) from exc


def anonymous_track_input(body: dict[str, Any], now: float) -> Track:
    """`POST /api/v1/events`: an event of the anonymous person `anon:<anonymous_id>`."""
    anonymous_id = body.get("anonymous_id")
    if anonymous_id is None or anonymous_id == "":
        # Customer.io keeps such events unattached (invite-style sends); Nudge ties every
        # event to a person, so it says so instead of accepting and dropping it.
        raise ApiError(
            400,
            "anonymous_id is required: Nudge ties every event to a person "
            "(use /api/v1/customers/{id}/events for a known person)",
        )
    if not isinstance(anonymous_id, str):
        raise ApiError(400, "`anonymous_id` must be a string")
    person = customer_id(anonymous_person(anonymous_id), "anonymous_id")
    return track_input(person, {k: v for k, v in body.items() if k != "anonymous_id"}, now)


def device_input(person: str, body: dict[str, Any], now: float) -> Devices:
    """`PUT .../devices` with `{"device": {"id", "platform", "last_used", "attributes"}}`."""
    device = body.get("device")
    if not isinstance(device, dict):
        raise ApiError(400, "the body needs a `device` object")
    device_id = device.get("id")
    if not isinstance(device_id, str) or not device_id.strip():
        raise ApiError(400, "device id must be a non-empty string (`device.id`)")
    platform = device.get("platform")
    if platform not in DEVICE_PLATFORMS:
        raise ApiError(400, "device platform must be one of: ios, android (`device.platform`)")
    last_used = device.get("last_used")
    if last_used is not None and (
        isinstance(last_used, bool) or not isinstance(last_used, (int, float))
    ):
        raise ApiError(400, "`device.last_used` must be Unix seconds (a number)")
    attributes = device.get("attributes", {})
    if not isinstance(attributes, dict):
        raise ApiError(400, "`device.attributes` must be an object")
    # Clients such as customerio-python put extra device fields beside id and platform.
    extra = {
        k: v for k, v in device.items() if k not in ("id", "platform", "last_used", "attributes")
    }
    attributes = {**extra, **attributes}
    _check_attributes(attributes)
    return Devices(
        person=person,
        at=now,
        action="add",
        device_id=device_id,
        platform=platform,
        last_used=float(last_used) if last_used is not None else None,
        attributes=attributes,
    )


def merge_input(body: dict[str, Any], now: float) -> MergeInto:
    """`POST /api/v1/merge_customers`: the secondary person is merged into the primary."""

    def person_of(role: str) -> str:
        ref = body.get(role)
        if not isinstance(ref, dict) or len(ref) != 1:
            raise ApiError(400, f"`{role}` must be an object with exactly one identifier, e.g. {{\"id\": \"42\"}}")
        (kind, value), = ref.items()
        if kind in ("email", "cio_id"):
            raise ApiError(
                400,
                f"`{role}.{kind}`: Nudge identifies people by `id` only; merge by id",
            )
        if kind != "id":
            raise ApiError(400, f"`{role}` identifier must be `id` (got `{kind}`)")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            raise ApiError(400, f"`{role}.id` must be a string")
        return customer_id(value, f"{role} id")

    primary, secondary = person_of("primary"), person_of("secondary")
    if primary == secondary:
        raise ApiError(400, "primary and secondary are the same person")
    return MergeInto(person=secondary, at=now, into=primary)


def track_api_routes(
    publish: Publish,
    site_id: str,
    api_key: str,
    clock: Callable[[], float] = time.time,
    *,
    limiter: RateLimiter | None = None,
) -> list[web.RouteDef]:
    """The Track API's routes, publishing through `publish`."""
    credential = f"track:{site_id}"

    async def accept(request: web.Request) -> dict[str, Any]:
        check_basic_auth(request.headers.get("Authorization"), site_id, api_key)
        if limiter is not None:
            limiter.take(credential)
        return parse_json_object(await read_bounded(request, MAX_BODY_BYTES))

    def path_person(request: web.Request) -> str:
        # aiohttp matches on the still-encoded path and decodes each segment, so
        # `/customers/a%2Fb` addresses the person `a/b`.
        return customer_id(request.match_info["id"])

    async def done(inputs: list[Input]) -> web.Response:
        await publish(inputs)
        return web.json_response({})

    async def identify(request: web.Request) -> web.Response:
        body = await accept(request)
        return await done(identify_inputs(path_person(request), body, clock()))

    async def track(request: web.Request) -> web.Response:
        body = await accept(request)
        return await done([track_input(path_person(request), body, clock())])

    async def anonymous_track(request: web.Request) -> web.Response:
        body = await accept(request)
        return await done([anonymous_track_input(body, clock())])

    async def delete(request: web.Request) -> web.Response:
        await accept(request)
        return await done([Delete(person=path_person(request), at=clock())])

    async def add_device(request: web.Request) -> web.Response:
        body = await accept(request)
        return await done([device_input(path_person(request), body, clock())])

    async def remove_device(request: web.Request) -> web.Response:
        await accept(request)
        device_id = request.match_info["device_id"]
        if not device_id.strip():
            raise ApiError(400, "the device id in the path is empty")
        return await done(
            [Devices(person=path_person(request), at=clock(), action="remove", device_id=device_id)]
        )

    async def suppress(request: web.Request) -> web.Response:
        await accept(request)
        return await done([Suppress(person=path_person(request), at=clock(), suppressed=True)])

    async def unsuppress(request: web.Request) -> web.Response:
        await accept(request)
        return await done([Suppress(person=path_person(request), at=clock(), suppressed=False)])

    async def merge(request: web.Request) -> web.Response:
        body = await accept(request)
        return await done([merge_input(body, clock())])

    return [
        web.put("/api/v1/customers/{id}", identify),
        web.delete("/api/v1/customers/{id}", delete),
        web.post("/api/v1/customers/{id}/events", track),
        web.post("/api/v1/events", anonymous_track),
        web.put("/api/v1/customers/{id}/devices", add_device),
        web.delete("/api/v1/customers/{id}/devices/{device_id}", remove_device),
        web.post("/api/v1/customers/{id}/suppress", suppress),
        web.post("/api/v1/customers/{id}/unsuppress", unsuppress),
        web.post("/api/v1/merge_customers", merge),
    ]
