"""Segment's and RudderStack's webhook destinations: one Segment-spec event per request.

With `webhook_secret` set, `X-Signature` must be the HMAC-SHA1 (hex) of the raw body, as
Segment signs; without it, the server write key is required as for the Tracking API.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from aiohttp import web

from schemas.segment_messages import MAX_MESSAGE_BYTES, TypedSegmentMessage
from streams.http.auth import Webhook, WriteKey
from streams.http.operations import Call, Operation
from streams.http.publisher import Publish
from streams.http.segment_api import SegmentAccepted
from streams.http.segment_spec import message_inputs

SOURCES = ("segment", "rudderstack")


def webhook_operations(
    publish: Publish, write_key: str | None, secret: str | None, clock: Callable[[], float] = time.time
) -> list[Operation]:
    """`POST /webhooks/segment` and `/webhooks/rudderstack`."""
    auth = Webhook(secret, WriteKey(write_key))

    async def receive(call: Call) -> web.Response:
        message: TypedSegmentMessage = call.body
        await publish(message_inputs(message.type, message, clock()))
        return web.json_response({"success": True})

    return [
        Operation("POST", f"/webhooks/{source}", receive, f"{source.capitalize()} webhook destination",
                  "Webhook destinations", auth=auth, body=TypedSegmentMessage, body_limit=MAX_MESSAGE_BYTES,
                  response=SegmentAccepted, errors=(400, 401, 413, 429, 503), family="segment")
        for source in SOURCES
    ]
