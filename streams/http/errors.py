"""Refused requests and how each API family answers them.

- Customer.io's (the Track API v1, the App API side, everything not listed below):
  `{"meta": {"error": "..."}}`.
- Track API v2 (`/api/v2/...`): the same, plus Customer.io's v2 list
  `"errors": [{"reason", "field", "message", "batch_index"?}]`.
- Segment's (`/v1/identify` ... `/v1/batch`, `/webhooks/...`, browser routes):
  `{"success": false, "error": "..."}`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Literal

from aiohttp import web
from aiokafka.errors import KafkaError

from schemas.errors import NudgeError

log = logging.getLogger(__name__)

Family = Literal["cio", "v2", "segment"]

# Where the router itself answers (404, 405), the family is guessed from the path.
SEGMENT_PREFIXES = ("/webhooks/", "/beacon/", "/v1/projects/")
SEGMENT_PATHS = frozenset(
    f"/v1/{name}"
    for name in ("identify", "track", "page", "screen", "group", "alias", "batch", "import",
                 "i", "t", "p", "s", "g", "a", "b")
)


class ApiError(NudgeError):
    """A request Nudge refuses; `status`, `message` (and `headers`) become the HTTP answer.

    `field` names the offending field's path; `details` are v2's per-operation errors.
    """

    def __init__(
        self,
        status: int,
        message: str,
        headers: Mapping[str, str] | None = None,
        *,
        field: str = "",
        details: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})
        self.field = field
        self.details = details


def family_of(path: str) -> Family:
    """The error family a path belongs to when no operation says (router answers)."""
    if path in SEGMENT_PATHS or path.startswith(SEGMENT_PREFIXES):
        return "segment"
    if path.startswith("/api/v2/"):
        return "v2"
    return "cio"


def error_body(error: ApiError, family: Family) -> dict[str, Any]:
    """The JSON body of `error` in `family`'s shape."""
    if family == "segment":
        return {"success": False, "error": error.message}
    body: dict[str, Any] = {"meta": {"error": error.message}}
    if family == "v2":
        body["errors"] = error.details or [
            {"reason": _reason(error.status), "field": error.field, "message": error.message}
        ]
    return body


def _reason(status: int) -> str:
    return {401: "unauthorized", 403: "forbidden", 404: "not_found", 413: "too_large",
            429: "rate_limited", 503: "unavailable"}.get(status, "invalid")


def error_response(error: ApiError, family: Family) -> web.Response:
    """`error` as an HTTP answer in `family`'s shape."""
    return web.json_response(error_body(error, family), status=error.status, headers=error.headers)


def kafka_unavailable(exc: KafkaError) -> ApiError:
    """Nothing was acknowledged, so the client may safely retry the whole request."""
    log.warning("publishing to Kafka failed: %r", exc)
    return ApiError(503, f"could not store the input in Kafka ({type(exc).__name__}); retry later",
                    {"Retry-After": "1"})


@web.middleware
async def api_errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """The router's own 4xx (404, 405) in the family's shape; an unexpected error as a logged 500.

    Operations answer their own refusals (streams/http/operations.py); what reaches here is
    the router's, or a bug.
    """
    family = family_of(request.path)
    try:
        return await handler(request)
    except ApiError as exc:
        return error_response(exc, family)
    except web.HTTPException as exc:
        if exc.status >= 400:
            kept = {k: v for k, v in exc.headers.items() if k.lower() in ("allow", "retry-after")}
            return error_response(ApiError(exc.status, exc.reason, kept), family)
        raise
    except KafkaError as exc:
        return error_response(kafka_unavailable(exc), family)
    except Exception:
        log.exception("unexpected error answering %s %s", request.method, request.path)
        return error_response(ApiError(500, "internal error: the request was not stored; see the API's log"), family)
