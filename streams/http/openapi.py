"""The OpenAPI 3.1 document of every route, at `GET /openapi.json`, generated from the operations.

Nothing here describes a route by hand: paths, parameters, credentials and answers come from
each `Operation`, and bodies from their pydantic models (`schemas/track_api.py`,
`schemas/segment_messages.py`, `schemas/app_api.py`), whose examples the tests validate.
"""

from __future__ import annotations

from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, TypeAdapter

from streams.http.operations import JSON, Call, Operation

REF = "#/components/schemas/{model}"
_DESCRIBED = {
    400: "The request breaks a rule; the message names the field.",
    401: "Missing or wrong credentials (or the route's key is not configured).",
    403: "Not allowed with this key or from this origin, or the link was altered.",
    404: "Nothing by that id.",
    405: "Method not allowed here.",
    409: "The campaign or template files are invalid; fix them first.",
    413: "The body is larger than the limit.",
    429: "Rate limit exceeded; see Retry-After.",
    503: "Kafka or PostgreSQL did not take it; nothing was stored, retry.",
}


class ErrorMeta(BaseModel):
    """`meta` of a Customer.io-style refusal."""

    error: str


class CustomerIoError(BaseModel):
    """A refusal, Customer.io's way."""

    meta: ErrorMeta


class TrackV2ErrorItem(BaseModel):
    """One refused operation of a v2 request."""

    model_config = ConfigDict(extra="allow")

    reason: str
    field: str
    message: str
    batch_index: int | None = None


class TrackV2Error(CustomerIoError):
    """A Track API v2 refusal: `meta.error`, and one item per refused operation."""

    errors: list[TrackV2ErrorItem]


class SegmentError(BaseModel):
    """A refusal, Segment's way."""

    success: Literal[False]
    error: str


_ERROR_MODELS = {"cio": CustomerIoError, "v2": TrackV2Error, "segment": SegmentError}


class _Components:
    """Collects schemas once each under components/schemas."""

    def __init__(self) -> None:
        self.schemas: dict[str, Any] = {}

    def schema(self, kind: Any) -> dict[str, Any]:
        """A reference (models) or an inline schema (other types) for `kind`."""
        generated = TypeAdapter(kind).json_schema(ref_template=REF, mode="validation")
        self.schemas.update(generated.pop("$defs", {}))
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            self.schemas[kind.__name__] = generated
            return {"$ref": REF.format(model=kind.__name__)}
        return generated


def _parameters(operation: Operation, components: _Components) -> list[dict[str, Any]]:
    parameters = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "description": "Percent-encoded; `%2F` is part of the value.",
            "schema": {"type": "string", "minLength": 1, "maxLength": operation.path_limit(name)},
        }
        for name in operation.path_params
    ]
    if operation.query is not None:
        schema = operation.query.model_json_schema(ref_template=REF)
        components.schemas.update(schema.pop("$defs", {}))
        required = set(schema.get("required", []))
        for name, field in schema.get("properties", {}).items():
            parameters.append({"name": name, "in": "query", "required": name in required, "schema": field})
    return parameters


def _examples(kind: Any) -> list[Any]:
    """The examples a body model documents (its `json_schema_extra`), for the media type."""
    if isinstance(kind, type) and issubclass(kind, BaseModel):
        extra = kind.model_config.get("json_schema_extra") or {}
        examples = extra.get("examples", []) if isinstance(extra, dict) else []
        if isinstance(examples, list):
            return list(examples)
    return []


def _operation(operation: Operation, components: _Components) -> dict[str, Any]:
    document: dict[str, Any] = {
        "summary": operation.summary,
        "tags": [operation.tag],
        "operationId": f"{operation.method.lower()}_{operation.path.strip('/').replace('/', '_')}"
                       .replace("{", "").replace("}", "").replace(".", "_"),
        "parameters": _parameters(operation, components),
    }
    if operation.description:
        document["description"] = operation.description
    if operation.auth is not None:
        document["security"] = [{operation.auth.name: []}]
    if operation.body is not None:
        media: dict[str, Any] = {"schema": components.schema(operation.body)}
        examples = _examples(operation.body)
        if examples:
            media["examples"] = {f"example{i + 1}": {"value": v} for i, v in enumerate(examples)}
        document["requestBody"] = {"required": False, "content": {JSON: media}}
    elif operation.form is not None:
        document["requestBody"] = {
            "required": False,
            "content": {"application/x-www-form-urlencoded": {"schema": components.schema(operation.form)}},
        }
    answer: dict[str, Any] = {"description": "Accepted." if operation.method != "GET" else "Found."}
    if operation.produces == JSON:
        answer["content"] = {JSON: {"schema": components.schema(operation.response) if operation.response
                                    else {"type": "object"}}}
    elif operation.success != 302:
        answer["content"] = {operation.produces: {"schema": {"type": "string"}}}
    responses: dict[str, Any] = {str(operation.success): answer}
    error = components.schema(_ERROR_MODELS[operation.family])
    for code in operation.errors:
        responses[str(code)] = {"description": _DESCRIBED[code], "content": {JSON: {"schema": error}}}
    document["responses"] = responses
    return document


def openapi_document(operations: list[Operation], server_url: str | None = None) -> dict[str, Any]:
    """The OpenAPI 3.1 document of `operations`."""
    components = _Components()
    paths: dict[str, dict[str, Any]] = {}
    schemes: dict[str, Any] = {}
    for operation in operations:
        paths.setdefault(operation.path, {})[operation.method.lower()] = _operation(operation, components)
        if operation.auth is not None:
            schemes[operation.auth.name] = operation.auth.openapi
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "Nudge",
            "version": "1",
            "description": "Customer.io Track API v1/v2, Segment/RudderStack HTTP APIs, browser SDKs, "
                           "transactional sends, broadcasts, the read side and email links. Each key "
                           "opens only its own routes (see the security of each operation).",
        },
        "paths": paths,
        "components": {"schemas": components.schemas, "securitySchemes": schemes},
    }
    if server_url:
        document["servers"] = [{"url": server_url}]
    return document


def openapi_operations(operations: list[Operation], public_url: str | None = None) -> list[Operation]:
    """`GET /openapi.json`, describing `operations` and itself."""
    cached: dict[str, Any] = {}

    async def serve_document(call: Call) -> web.Response:
        if "document" not in cached:
            cached["document"] = openapi_document(everything, public_url)
        return web.json_response(cached["document"])

    own = Operation("GET", "/openapi.json", serve_document, "This document", "Meta", errors=())
    everything = [*operations, own]
    return [own]
