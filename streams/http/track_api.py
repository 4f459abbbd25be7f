"""Customer.io Track API v1: identify and track, turned into inputs on the person's partition.

Answers as Customer.io does: 200 with `{}` on success, `{"meta": {"error": "..."}}` with a 4xx
status and a message naming the problem otherwise.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web
from pydantic import ValidationError

from schemas.inputs import Identify, Input, Track

Publish = Callable[[list[Input]], Awaitable[None]]

# Customer.io's documented limits.
MAX_ATTRIBUTES = 300
MAX_ATTRIBUTE_NAME_BYTES = 150
MAX_ATTRIBUTE_VALUE_BYTES = 1000
MAX_EVENT_NAME_BYTES = 100
MAX_EVENT_DATA_BYTES = 100_000
MAX_ID_BYTES = 150


class ApiError(Exception):
    """A request Nudge refuses; `status` and `message` become the HTTP answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def error_response(status: int, message: str) -> web.Response:
    """Customer.io's error shape."""
    return web.json_response({"meta": {"error": message}}, status=status)


def check_basic_auth(header: str | None, site_id: str, api_key: str) -> None:
    """Raise a 401 ApiError unless `header` is HTTP Basic `site_id:api_key`."""
    if not header or not header.startswith("Basic "):
        raise ApiError(401, "Unauthorized request: send HTTP Basic site_id:api_key")
    try:
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise ApiError(401, "Unauthorized request: malformed Basic credentials") from exc
    if not (
        hmac.compare_digest(user.encode(), site_id.encode())
        and hmac.compare_digest(password.encode(), api_key.encode())
    ):
        raise ApiError(401, "Unauthorized request: unknown site_id or api_key")


async def read_json_object(request: web.Request) -> dict[str, Any]:
    """The request body as a JSON object; an empty body is `{}`."""
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, f"the request body is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ApiError(400, "the request body must be a JSON object")
    return data


def customer_id(request: web.Request) -> str:
    """The `{id}` of the path, decoded, checked against the documented limits."""
    value = request.match_info["id"]
    if not value.strip():
        raise ApiError(400, "the customer id in the path is empty")
    if len(value.encode()) > MAX_ID_BYTES:
        raise ApiError(400, f"the customer id is longer than {MAX_ID_BYTES} bytes")
    return value


def identify_input(person: str, body: dict[str, Any], now: float) -> Identify:
    """Validate an identify body against Customer.io's limits and build the input."""
    if len(body) > MAX_ATTRIBUTES:
        raise ApiError(400, f"too many attributes: {len(body)} (the limit is {MAX_ATTRIBUTES})")
    for name, value in body.items():
        if len(name.encode()) > MAX_ATTRIBUTE_NAME_BYTES:
            raise ApiError(
                400, f"attribute name {name[:40]!r}... is longer than {MAX_ATTRIBUTE_NAME_BYTES} bytes"
            )
        if len(orjson.dumps(value)) > MAX_ATTRIBUTE_VALUE_BYTES:
            raise ApiError(
                400, f"attribute {name!r} has a value longer than {MAX_ATTRIBUTE_VALUE_BYTES} bytes"
            )
    return Identify(person=person, at=now, attributes=body)


def track_input(person: str, body: dict[str, Any], now: float) -> Track:
    """Validate a track body (`name`, `data`, `timestamp`, `id`, `type`) and build the input."""
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ApiError(400, "the event needs a non-empty string `name`")
    if len(name.encode()) > MAX_EVENT_NAME_BYTES:
        raise ApiError(400, f"event name is longer than {MAX_EVENT_NAME_BYTES} bytes")
    data = body.get("data", {})
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ApiError(400, "`data` must be a JSON object")
    if len(orjson.dumps(data)) > MAX_EVENT_DATA_BYTES:
        raise ApiError(413, f"event data is larger than {MAX_EVENT_DATA_BYTES} bytes")
    timestamp = body.get("timestamp")
    if timestamp is not None and (
        isinstance(timestamp, bool) or not isinstance(timestamp, (int, float))
    ):
        raise ApiError(400, "`timestamp` must be Unix seconds (a number)")
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


def track_api_routes(
    publish: Publish, site_id: str, api_key: str, clock: Callable[[], float] = time.time
) -> list[web.RouteDef]:
    """The Track API's routes, publishing through `publish`."""

    async def identify(request: web.Request) -> web.Response:
        check_basic_auth(request.headers.get("Authorization"), site_id, api_key)
        person = customer_id(request)
        body = await read_json_object(request)
        await publish([identify_input(person, body, clock())])
        return web.json_response({})

    async def track(request: web.Request) -> web.Response:
        check_basic_auth(request.headers.get("Authorization"), site_id, api_key)
        person = customer_id(request)
        body = await read_json_object(request)
        await publish([track_input(person, body, clock())])
        return web.json_response({})

    return [
        web.put("/api/v1/customers/{id}", identify),
        web.post("/api/v1/customers/{id}/events", track),
    ]


@web.middleware
async def api_errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Turn ApiError into Customer.io's error shape, and aiohttp's own 404/405 too."""
    try:
        return await handler(request)
    except ApiError as exc:
        return error_response(exc.status, exc.message)
    except web.HTTPException as exc:
        if exc.status >= 400:
            return error_response(exc.status, exc.reason)
        raise
