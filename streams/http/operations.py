"""Every HTTP route is an `Operation`: its path, credential scheme, body and query models, answers.

One declaration serves three purposes: the aiohttp route (with the checks below run in order
for every request), the OpenAPI document (`streams/http/openapi.py` reads the same fields),
and the route list the security tests walk. The checks, in order:

1. the origin (routes open to browsers: an `Origin` outside NUDGE_CORS_ORIGINS is refused);
2. path segments and query values (no NUL, no lone surrogate, ids within their byte limit);
3. the body, read within its limit (413), JSON, at most 32 levels deep, storable text;
4. the credential (401/403), then the rate limits (429);
5. the query and the body against their models (400 naming the field);
6. the handler, given a `Call` with everything parsed.

A refusal anywhere answers in the operation's error family (streams/http/errors.py).
"""

from __future__ import annotations

import math
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from aiohttp import web
from aiokafka.errors import KafkaError
from pydantic import BaseModel, TypeAdapter

from streams.database import DatabaseUnavailable
from streams.http.auth import PUBLIC, Credential, Scheme
from streams.http.bodies import parse_json_object, read_bounded
from streams.http.errors import ApiError, Family, error_response, kafka_unavailable
from streams.http.json_safety import UnsafeValue, check_json, check_text
from streams.http.validation import parse_as, parse_model
from streams.rate_limit import RateLimiter

JSON = "application/json"
DEFAULT_BODY_BYTES = 256 * 1024
# Person ids, segment ids, device ids: Customer.io's 150 bytes.
DEFAULT_PATH_BYTES = 150
_PATH_PARAM = re.compile(r"\{(\w+)(?::[^}]*)?\}")


@dataclass(frozen=True)
class Call:
    """One accepted request: the parsed body and query, and who is calling."""

    request: web.Request
    body: Any
    query: Any
    credential: Credential
    raw: bytes = b""

    def path(self, name: str) -> str:
        """A path segment, percent-decoded (`a%2Fb` is `a/b`)."""
        return self.request.match_info[name]


Handler = Callable[[Call], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Operation:
    """One route: what it takes, who may call it, what it answers."""

    method: str
    path: str
    handler: Handler
    summary: str
    tag: str
    auth: Scheme | None = None
    # The JSON body's model (a model class, or a union of them); None: no JSON body.
    body: Any = None
    # False: the handler validates the body itself (per batch item); `body` still documents it.
    validate_body: bool = True
    body_limit: int = DEFAULT_BODY_BYTES
    # A form-encoded body the handler reads itself (documented from this model).
    form: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    # Byte limit of each path parameter (default 150).
    path_limits: Mapping[str, int] = field(default_factory=dict)
    response: Any = None
    success: int = 200
    errors: tuple[int, ...] = (400, 401, 429)
    family: Family = "cio"
    produces: str = JSON
    # Open to browsers on NUDGE_CORS_ORIGINS (preflight answered, Allow-Origin set).
    cors: bool = False
    description: str = ""

    @property
    def path_params(self) -> list[str]:
        """The names of the path's `{parameters}`."""
        return _PATH_PARAM.findall(self.path)

    def path_limit(self, name: str) -> int:
        """The byte limit of path parameter `name`."""
        return self.path_limits.get(name, DEFAULT_PATH_BYTES)


@dataclass
class Edge:
    """What every operation shares: rate limits and the browser origins allowed."""

    per_credential: RateLimiter
    per_address: RateLimiter
    cors_origins: frozenset[str] = frozenset()

    def origin_allowed(self, origin: str) -> bool:
        """Whether a browser page on `origin` may call the browser routes."""
        return "*" in self.cors_origins or origin in self.cors_origins

    def limit(self, credential: Credential, request: web.Request) -> None:
        """Spend one request of the credential's budget, and of the client address's for browsers."""
        if credential.rate_key:
            spend_or_refuse(self.per_credential, credential.rate_key, "per credential")
        if credential.browser:
            spend_or_refuse(self.per_address, f"address:{request.remote or 'unknown'}", "per client address")


def spend_or_refuse(limiter: RateLimiter, key: str, per: str) -> None:
    """Spend one token of `key`'s bucket, or refuse with a 429 saying when to retry."""
    wait = limiter.take(key)
    if wait > 0:
        raise ApiError(
            429,
            f"rate limit exceeded: at most {limiter.rate:g} requests per second {per}",
            {"Retry-After": str(max(1, math.ceil(wait)))},
        )


_ADAPTERS: dict[int, TypeAdapter[Any]] = {}


def _adapter(kind: Any) -> TypeAdapter[Any]:
    if id(kind) not in _ADAPTERS:
        _ADAPTERS[id(kind)] = TypeAdapter(kind)
    return _ADAPTERS[id(kind)]


def validate(kind: Any, data: Any, *, where: str = "") -> Any:
    """`data` as `kind` (a model class or any type), or a 400 naming the field."""
    if isinstance(kind, type) and issubclass(kind, BaseModel):
        return parse_model(kind, data, where=where)
    return parse_as(_adapter(kind), data, where=where)


def json_body(raw: bytes) -> dict[str, Any]:
    """`raw` as a JSON object that can be stored: depth and characters checked (400 otherwise)."""
    data = parse_json_object(raw)
    try:
        check_json(data)
    except UnsafeValue as exc:
        raise ApiError(400, str(exc), field=exc.path) from exc
    return data


def _check_segments(operation: Operation, request: web.Request) -> None:
    try:
        for name, value in request.match_info.items():
            check_text(value, f"path.{name}")
            if not value.strip():
                raise ApiError(400, f"`path.{name}` is empty", field=f"path.{name}")
            limit = operation.path_limit(name)
            if len(value.encode()) > limit:
                raise ApiError(400, f"`path.{name}` is longer than {limit} bytes", field=f"path.{name}")
        for key, value in request.query.items():
            check_text(key, "query")
            check_text(value, f"query.{key}")
    except UnsafeValue as exc:
        raise ApiError(400, str(exc), field=exc.path) from exc


def _query(operation: Operation, request: web.Request) -> Any:
    assert operation.query is not None
    known = operation.query.model_fields
    values: dict[str, str] = {}
    for key, value in request.query.items():
        if key in values and key in known:
            raise ApiError(400, f"`query.{key}` is given more than once", field=f"query.{key}")
        values[key] = value
    return parse_model(operation.query, values, where="query")


def _cors_headers(edge: Edge, request: web.Request) -> dict[str, str]:
    origin = request.headers.get("Origin")
    if origin and edge.origin_allowed(origin):
        return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
    return {}


def _check_origin(edge: Edge, request: web.Request) -> None:
    origin = request.headers.get("Origin")
    if origin is not None and not edge.origin_allowed(origin):
        raise ApiError(403, f"origin {origin[:100]!r} is not allowed: add it to NUDGE_CORS_ORIGINS")


def handle(operation: Operation, edge: Edge) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """The aiohttp handler running `operation`'s checks in order, then its handler."""
    reads = operation.body is not None or (operation.auth is not None and operation.auth.reads_body)

    async def run(request: web.Request) -> web.StreamResponse:
        try:
            if operation.cors:
                _check_origin(edge, request)
            _check_segments(operation, request)
            raw = await read_bounded(request, operation.body_limit) if reads else b""
            data = None
            if operation.auth is not None and operation.auth.reads_body and operation.body is not None:
                data = json_body(raw)
            credential = operation.auth.check(request, raw, data) if operation.auth else PUBLIC
            edge.limit(credential, request)
            query = _query(operation, request) if operation.query is not None else None
            body: Any = None
            if operation.body is not None:
                data = json_body(raw) if data is None else data
                body = validate(operation.body, data) if operation.validate_body else data
            response = await operation.handler(Call(request, body, query, credential, raw))
        except ApiError as exc:
            response = error_response(exc, operation.family)
        except KafkaError as exc:
            response = error_response(kafka_unavailable(exc), operation.family)
        except DatabaseUnavailable as exc:
            response = error_response(ApiError(503, str(exc), {"Retry-After": "5"}), operation.family)
        except asyncpg.UndefinedTableError as exc:
            response = error_response(
                ApiError(503, f"the database is not migrated ({exc}); run `nudge migrate`", {"Retry-After": "5"}),
                operation.family,
            )
        except (OSError, asyncpg.InterfaceError, asyncpg.CannotConnectNowError) as exc:
            response = error_response(
                ApiError(503, f"PostgreSQL is unavailable ({type(exc).__name__}); retry later", {"Retry-After": "5"}),
                operation.family,
            )
        if operation.cors:
            response.headers.update(_cors_headers(edge, request))
        return response

    return run


def preflight(methods: list[str], edge: Edge) -> Callable[[web.Request], Awaitable[web.Response]]:
    """The CORS preflight (`OPTIONS`) of a browser route: allowed origins only."""
    allowed = ", ".join(sorted({*methods, "OPTIONS"}))

    async def answer(request: web.Request) -> web.Response:
        origin = request.headers.get("Origin")
        wanted = request.headers.get("Access-Control-Request-Method", "")
        if not origin or not edge.origin_allowed(origin):
            return error_response(
                ApiError(403, f"origin {(origin or '')[:100]!r} is not allowed: add it to NUDGE_CORS_ORIGINS"),
                "segment",
            )
        if wanted and wanted.upper() not in methods:
            return error_response(ApiError(405, f"{wanted[:20]} is not allowed here; use {allowed}"), "segment")
        headers = {
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Allow-Methods": allowed,
            "Access-Control-Max-Age": "600",
            "Vary": "Origin",
        }
        requested = request.headers.get("Access-Control-Request-Headers")
        if requested:
            headers["Access-Control-Allow-Headers"] = requested
        return web.Response(status=204, headers=headers)

    return answer


def add_operations(app: web.Application, operations: list[Operation], edge: Edge) -> None:
    """Route every operation (and the preflight of each browser path) on `app`."""
    browser_paths: dict[str, list[str]] = {}
    for operation in operations:
        handler = handle(operation, edge)
        if operation.method == "GET":
            app.router.add_get(operation.path, handler)
        else:
            app.router.add_route(operation.method, operation.path, handler)
        if operation.cors:
            browser_paths.setdefault(operation.path, []).append(operation.method)
    for path, methods in browser_paths.items():
        app.router.add_route("OPTIONS", path, preflight(methods, edge))

