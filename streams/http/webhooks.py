"""Segment's and RudderStack's webhook destinations: one Segment-spec event per request.

With `webhook_secret` set, `X-Signature` must be the HMAC-SHA1 (hex) of the raw body, as
Segment signs; without it, the write key is required as for the Tracking API.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from schemas.inputs import Input
from streams.http.auth import check_webhook_signature, check_write_key
from streams.http.bodies import parse_json_object, read_bounded
from streams.http.errors import ApiError
from streams.http.rate_limit import RateLimiter
from streams.http.segment_spec import MAX_MESSAGE_BYTES, MESSAGE_TYPES, message_inputs

Publish = Callable[[list[Input]], Awaitable[None]]

SOURCES = ("segment", "rudderstack")


def webhook_routes(
    publish: Publish,
    write_key: str,
    secret: str | None,
    clock: Callable[[], float] = time.time,
    *,
    limiter: RateLimiter | None = None,
) -> list[web.RouteDef]:
    """`POST /webhooks/segment` and `/webhooks/rudderstack`."""

    def receiver(source: str) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handle(request: web.Request) -> web.Response:
            raw = await read_bounded(request, MAX_MESSAGE_BYTES, "event")
            if secret is not None:
                check_webhook_signature(request.headers.get("X-Signature"), secret, raw)
            body = parse_json_object(raw)
            if secret is None:
                check_write_key(request.headers.get("Authorization"), body.get("writeKey"), write_key)
            if limiter is not None:
                limiter.take(f"webhook:{source}")
            kind = body.get("type")
            if kind not in MESSAGE_TYPES:
                raise ApiError(400, f"`type` must be one of {', '.join(MESSAGE_TYPES)}")
            await publish(message_inputs(kind, body, clock()))
            return web.json_response({"success": True})

        return handle

    return [web.post(f"/webhooks/{source}", receiver(source)) for source in SOURCES]
