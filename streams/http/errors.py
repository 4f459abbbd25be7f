"""Refused requests and how each API family answers them.

The Track API (and everything else) answers Customer.io's way, `{"meta": {"error": "..."}}`;
Segment's endpoints (`/v1/identify` ... `/v1/batch`, `/webhooks/...`) answer Segment's way,
`{"success": false, "error": "..."}`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web
from aiokafka.errors import KafkaError

log = logging.getLogger(__name__)

# Only Segment's own paths: other `/v1/...` routes (the transactional API) answer Customer.io's way.
SEGMENT_PATHS = frozenset(
    f"/v1/{name}" for name in ("identify", "track", "page", "screen", "group", "alias", "batch", "import")
)
SEGMENT_PREFIXES = ("/webhooks/",)


class ApiError(Exception):
    """A request Nudge refuses; `status`, `message` (and `headers`) become the HTTP answer."""

    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})


def error_response(
    status: int, message: str, headers: Mapping[str, str] | None = None, *, segment: bool = False
) -> web.Response:
    """The error body of the family the request belongs to (Customer.io's unless `segment`)."""
    body = {"success": False, "error": message} if segment else {"meta": {"error": message}}
    return web.json_response(body, status=status, headers=headers)


@web.middleware
async def api_errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Turn ApiError, aiohttp's own 4xx and an unreachable Kafka into the family's error shape."""
    segment = request.path in SEGMENT_PATHS or request.path.startswith(SEGMENT_PREFIXES)
    try:
        return await handler(request)
    except ApiError as exc:
        return error_response(exc.status, exc.message, exc.headers, segment=segment)
    except web.HTTPException as exc:
        if exc.status >= 400:
            return error_response(exc.status, exc.reason, segment=segment)
        raise
    except KafkaError as exc:
        # Nothing was acknowledged, so the client may safely retry the whole request.
        log.warning("publishing to Kafka failed: %r", exc)
        return error_response(
            503, f"could not store the input in Kafka ({type(exc).__name__}); retry later",
            {"Retry-After": "1"}, segment=segment,
        )
