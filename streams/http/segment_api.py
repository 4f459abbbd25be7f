"""Segment's HTTP Tracking API, as Segment's and RudderStack's SDKs (server and browser) call it.

- `/v1/identify` ... `/v1/alias`, `/v1/batch` (`/v1/import`): Segment's server API, which
  RudderStack's SDKs and Customer.io's Data Pipelines clients speak too.
- `/v1/i`, `/v1/t`, `/v1/p`, `/v1/s`, `/v1/g`, `/v1/a`, `/v1/b`: the short paths analytics.js
  posts to (its `apiHost` pointed at `<nudge>/v1`), `text/plain` JSON with `writeKey`.
- `/beacon/v1/batch`: RudderStack's JS SDK when it sends with `navigator.sendBeacon`.

The server write key opens all of them; the public browser key opens them too, except alias
(a page must not merge people). Every route here is open to NUDGE_CORS_ORIGINS. Success is
`{"success": true}`; a refusal is `{"success": false, "error": ...}`.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from pydantic import BaseModel

from schemas.segment_messages import MAX_BATCH_BYTES, MAX_MESSAGE_BYTES, SegmentBatch, SegmentMessage
from streams.http.auth import WriteKey
from streams.http.errors import ApiError
from streams.http.operations import Call, Operation
from streams.http.publisher import Publish
from streams.http.segment_spec import MESSAGE_TYPES, batch_inputs, message_inputs

SINGLE_TYPES = MESSAGE_TYPES
# What a page may send with the public key: no alias (merging people).
BROWSER_TYPES = ("identify", "track", "page", "screen", "group")
TAG = "Segment / RudderStack HTTP API"


class SegmentAccepted(BaseModel):
    """Segment's answer to an accepted call."""

    success: bool = True


def segment_api_operations(
    publish: Publish,
    write_key: str | None,
    browser_key: str | None = None,
    clock: Callable[[], float] = time.time,
) -> list[Operation]:
    """The Segment-spec routes, publishing through `publish`."""
    auth = WriteKey(write_key, browser_key, browser=True)

    def allowed(call: Call) -> tuple[str, ...]:
        return BROWSER_TYPES if call.credential.browser else MESSAGE_TYPES

    def single(kind: str) -> Callable[[Call], Awaitable[web.Response]]:
        async def handle(call: Call) -> web.Response:
            if kind not in allowed(call):
                raise ApiError(403, f"the browser key cannot send `{kind}` (it would merge people)")
            await publish(message_inputs(kind, call.body, clock()))
            return web.json_response({"success": True})

        return handle

    async def batch(call: Call) -> web.Response:
        await publish(batch_inputs(call.body, clock(), allowed=allowed(call)))
        return web.json_response({"success": True})

    def op(path: str, handler: Callable[[Call], Awaitable[web.Response]], summary: str, body: type,
           limit: int) -> Operation:
        return Operation("POST", path, handler, summary, TAG, auth=auth, body=body, body_limit=limit,
                         response=SegmentAccepted, errors=(400, 401, 403, 413, 429, 503),
                         family="segment", cors=True)

    operations = [
        op(f"/v1/{kind}", single(kind), f"Segment `{kind}`", SegmentMessage, MAX_MESSAGE_BYTES)
        for kind in SINGLE_TYPES
    ]
    operations += [
        op(f"/v1/{kind[0]}", single(kind), f"analytics.js `{kind}`", SegmentMessage, MAX_MESSAGE_BYTES)
        for kind in SINGLE_TYPES
    ]
    for path, summary in (
        ("/v1/batch", "Segment batch: all messages or none"),
        ("/v1/import", "Segment import (a batch)"),
        ("/v1/b", "analytics.js batch"),
        ("/beacon/v1/batch", "RudderStack JS beacon batch (writeKey in the query)"),
    ):
        operations.append(op(path, batch, summary, SegmentBatch, MAX_BATCH_BYTES))
    return operations
