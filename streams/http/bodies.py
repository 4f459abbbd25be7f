"""Request bodies: bounded reading (gzip already undone by aiohttp) and JSON objects."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError

from streams.http.errors import ApiError


async def read_bounded(request: web.Request, limit: int, what: str = "request body") -> bytes:
    """The (decompressed) body, or a 413 ApiError naming the limit when it is larger."""
    if request.content_length is not None and request.content_length > limit and not (
        request.headers.get("Content-Encoding")
    ):
        raise ApiError(413, f"the {what} is larger than {limit} bytes")
    # aiohttp decompresses Content-Encoding gzip/deflate while reading; the limit applies
    # to what it yields, so a small compressed body cannot expand without bound.
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.content.iter_chunked(64 * 1024):
            size += len(chunk)
            if size > limit:
                raise ApiError(413, f"the {what} is larger than {limit} bytes")
            chunks.append(chunk)
    except (RequestPayloadError, HttpProcessingError) as exc:
        # A Content-Encoding the body is not in, or a broken chunked transfer.
        cause = exc.__cause__ or exc
        raise ApiError(400, f"could not read the {what}: {str(cause).strip()}") from exc
    return b"".join(chunks)


def parse_json_object(raw: bytes, what: str = "the request body") -> dict[str, Any]:
    """`raw` as a JSON object; an empty body is `{}`; anything else is a 400 ApiError."""
    if not raw.strip():
        return {}
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, f"{what} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ApiError(400, f"{what} must be a JSON object")
    return data


async def read_json_object(request: web.Request, limit: int) -> dict[str, Any]:
    """The request body, at most `limit` bytes, as a JSON object (empty body: `{}`)."""
    return parse_json_object(await read_bounded(request, limit))
