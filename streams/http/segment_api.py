"""Segment's HTTP Tracking API (`/v1/identify` ... `/v1/batch`), which RudderStack's SDKs speak too.

The write key is the HTTP Basic user (password empty) or `writeKey` in the body. Success is
`{"success": true}`, Segment's answer; a refused request is `{"success": false, "error": ...}`.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from schemas.inputs import Input
from streams.http.auth import check_write_key
from streams.http.bodies import parse_json_object, read_bounded
from streams.http.rate_limit import RateLimiter
from streams.http.segment_spec import (
    MAX_BATCH_BYTES,
    MAX_MESSAGE_BYTES,
    batch_inputs,
    message_inputs,
)

Publish = Callable[[list[Input]], Awaitable[None]]

SINGLE_TYPES = ("identify", "track", "page", "screen", "group", "alias")


def segment_api_routes(
    publish: Publish,
    write_key: str,
    clock: Callable[[], float] = time.time,
    *,
    limiter: RateLimiter | None = None,
) -> list[web.RouteDef]:
    """The Segment-spec routes, publishing through `publish`."""
    credential = f"segment:{write_key}"

    def single(kind: str) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handle(request: web.Request) -> web.Response:
            body = parse_json_object(await read_bounded(request, MAX_MESSAGE_BYTES, "message"))
            check_write_key(request.headers.get("Authorization"), body.get("writeKey"), write_key)
            if limiter is not None:
                limiter.take(credential)
            await publish(message_inputs(kind, body, clock()))
            return web.json_response({"success": True})

        return handle

    async def batch(request: web.Request) -> web.Response:
        body = parse_json_object(await read_bounded(request, MAX_BATCH_BYTES, "batch"))
        check_write_key(request.headers.get("Authorization"), body.get("writeKey"), write_key)
        if limiter is not None:
            limiter.take(credential)
        await publish(batch_inputs(body, clock()))
        return web.json_response({"success": True})

    routes = [web.post(f"/v1/{kind}", single(kind)) for kind in SINGLE_TYPES]
    routes += [web.post("/v1/batch", batch), web.post("/v1/import", batch)]
    return routes
