"""Request bodies: bounded reading, gzip/deflate undone under the same bound, JSON objects.

The app turns aiohttp's own decompression off (`handler_args={"auto_decompress": False}`)
so that a body which is not in its declared encoding gets a 400 in the API's error shape,
and a small compressed body cannot expand past the limit.
"""

from __future__ import annotations

import zlib
from typing import Any

import orjson
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError

from streams.http.errors import ApiError

# zlib window bits: gzip or zlib header detected automatically; raw deflate.
_AUTO_HEADER = zlib.MAX_WBITS | 32
_RAW_DEFLATE = -zlib.MAX_WBITS


async def _read_raw(request: web.Request, limit: int, what: str) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        raise ApiError(413, f"the {what} is larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.content.iter_chunked(64 * 1024):
            size += len(chunk)
            if size > limit:
                raise ApiError(413, f"the {what} is larger than {limit} bytes")
            chunks.append(chunk)
    except (RequestPayloadError, HttpProcessingError) as exc:
        raise ApiError(400, f"could not read the {what}: {str(exc.__cause__ or exc).strip()}") from exc
    return b"".join(chunks)


def decompress(raw: bytes, encoding: str, limit: int, what: str = "request body") -> bytes:
    """`raw` decoded from `encoding` (gzip, deflate, identity); 413 past `limit`, 400 if corrupt."""
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return raw
    if encoding not in ("gzip", "x-gzip", "deflate"):
        raise ApiError(400, f"unsupported Content-Encoding {encoding!r}: use gzip, deflate or none")
    attempts = [_AUTO_HEADER] if encoding != "deflate" else [_AUTO_HEADER, _RAW_DEFLATE]
    for index, wbits in enumerate(attempts):
        inflater = zlib.decompressobj(wbits)
        try:
            body = inflater.decompress(raw, limit + 1)
        except zlib.error as exc:
            if index + 1 < len(attempts):
                continue
            raise ApiError(400, f"the {what} is not valid {encoding}: {exc}") from exc
        if len(body) > limit or inflater.unconsumed_tail:
            raise ApiError(413, f"the {what} is larger than {limit} bytes once decompressed")
        if not inflater.eof:
            raise ApiError(400, f"the {what} is not valid {encoding}: it is truncated")
        return body
    raise AssertionError("unreachable")  # pragma: no cover


async def read_bounded(request: web.Request, limit: int, what: str = "request body") -> bytes:
    """The decompressed body, or a 413 ApiError naming the limit when it is larger."""
    raw = await _read_raw(request, limit, what)
    return decompress(raw, request.headers.get("Content-Encoding", ""), limit, what)


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
