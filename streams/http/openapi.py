"""The OpenAPI 3.1 document of every HTTP endpoint Nudge serves, at `GET /openapi.json`.

Written by hand, beside the routes: a test checks that every route of the aiohttp app is
described here, so a new route without its description fails the suite.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from streams.http.segment_spec import GROUP_PREFIX

JSON = "application/json"

_ATTRIBUTE_VALUE: dict[str, Any] = {}  # any JSON value (at most 1000 bytes serialized)

_CIO_ERROR = {
    "type": "object",
    "required": ["meta"],
    "properties": {
        "meta": {
            "type": "object",
            "required": ["error"],
            "properties": {"error": {"type": "string"}},
        }
    },
}
_SEGMENT_ERROR = {
    "type": "object",
    "required": ["success", "error"],
    "properties": {"success": {"const": False}, "error": {"type": "string"}},
}
_SEGMENT_OK = {"type": "object", "required": ["success"], "properties": {"success": {"const": True}}}


def _responses(error: str, ok: dict[str, Any], codes: tuple[int, ...]) -> dict[str, Any]:
    described = {
        400: "The body breaks a rule; the message says which.",
        401: "Missing or wrong credentials.",
        404: "No such route.",
        413: "The body is larger than the limit.",
        429: "Rate limit exceeded; see Retry-After.",
        503: "Kafka did not acknowledge the input; nothing was stored, retry.",
    }
    responses: dict[str, Any] = {
        "200": {"description": "Accepted and durable in Kafka.", "content": {JSON: {"schema": ok}}}
    }
    for code in codes:
        responses[str(code)] = {
            "description": described[code],
            "content": {JSON: {"schema": {"$ref": f"#/components/schemas/{error}"}}},
        }
    return responses


def _cio(summary: str, body: dict[str, Any] | None = None, *, path_params: tuple[str, ...] = ("id",)) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "tags": ["Track API v1 (Customer.io)"],
        "summary": summary,
        "security": [{"trackBasic": []}],
        "parameters": [
            {
                "name": name,
                "in": "path",
                "required": True,
                "description": "Percent-encoded; `%2F` is part of the value.",
                "schema": {"type": "string", "minLength": 1, "maxLength": 150},
            }
            for name in path_params
        ],
        "responses": _responses(
            "CustomerIoError", {"type": "object", "maxProperties": 0}, (400, 401, 413, 429, 503)
        ),
    }
    if body is not None:
        operation["requestBody"] = {"required": False, "content": {JSON: {"schema": body}}}
    return operation


def _segment(summary: str, body_ref: str, tag: str = "Segment / RudderStack HTTP API") -> dict[str, Any]:
    return {
        "tags": [tag],
        "summary": summary,
        "security": [{"writeKey": []}, {}],
        "parameters": [
            {
                "name": "Content-Encoding",
                "in": "header",
                "required": False,
                "schema": {"type": "string", "enum": ["gzip", "deflate", "identity"]},
            }
        ],
        "requestBody": {
            "required": True,
            "content": {JSON: {"schema": {"$ref": f"#/components/schemas/{body_ref}"}}},
        },
        "responses": _responses("SegmentError", _SEGMENT_OK, (400, 401, 413, 429, 503)),
    }


def _page(summary: str, *, content: str = "text/html", form: bool = False, redirect: bool = False) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "tags": ["Email links"],
        "summary": summary,
        "parameters": [{"name": "token", "in": "path", "required": True, "schema": {"type": "string"}}],
        "responses": {
            "200": {"description": "The page.", "content": {content: {"schema": {"type": "string"}}}},
            "403": {"description": "The link was altered or is incomplete.", "content": {"text/html": {"schema": {"type": "string"}}}},
        },
    }
    if redirect:
        operation["parameters"].append({"name": "u", "in": "query", "required": True, "schema": {"type": "string"}})
        operation["responses"]["302"] = {"description": "To the signed URL."}
    if form:
        operation["requestBody"] = {"required": False, "content": {"application/x-www-form-urlencoded": {"schema": {"type": "object"}}}}
    return operation


def _read(summary: str, path_params: tuple[str, ...] = (), *, found: bool = False, body: dict[str, Any] | None = None) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "tags": ["Messages and suppressions"],
        "summary": summary,
        "security": [{"trackBasic": []}],
        "parameters": [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}
            for name in path_params
        ],
        "responses": {
            "200": {"description": "The answer.", "content": {JSON: {"schema": {"type": "object"}}}},
            "401": {"description": "Missing or wrong credentials.", "content": {JSON: {"schema": {"$ref": "#/components/schemas/CustomerIoError"}}}},
        },
    }
    if found:
        operation["responses"]["404"] = {"description": "Not found.", "content": {JSON: {"schema": {"$ref": "#/components/schemas/CustomerIoError"}}}}
    if body is not None:
        operation["requestBody"] = {"required": False, "content": {JSON: {"schema": body}}}
        operation["responses"]["400"] = {"description": "Not an address, or not JSON.", "content": {JSON: {"schema": {"$ref": "#/components/schemas/CustomerIoError"}}}}
    return operation


def _read_side(
    summary: str,
    path_params: tuple[str, ...] = (),
    query: tuple[tuple[str, str, str], ...] = (),
    *,
    tag: str = "Read side",
    found: bool = False,
) -> dict[str, Any]:
    """A GET of the read side (or a broadcast); `query` is (name, JSON type, description)."""
    error = {JSON: {"schema": {"$ref": "#/components/schemas/CustomerIoError"}}}
    operation: dict[str, Any] = {
        "tags": [tag],
        "summary": summary,
        "security": [{"trackBasic": []}],
        "parameters": [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}
            for name in path_params
        ] + [
            {"name": name, "in": "query", "required": False, "description": text, "schema": {"type": kind}}
            for name, kind, text in query
        ],
        "responses": {
            "200": {"description": "The answer; times are Unix seconds.", "content": {JSON: {"schema": {"type": "object"}}}},
            "400": {"description": "A query parameter is out of range.", "content": error},
            "401": {"description": "Missing or wrong credentials.", "content": error},
            "503": {"description": "PostgreSQL is unreachable or not migrated.", "content": error},
        },
    }
    if found:
        operation["responses"]["404"] = {"description": "Not found.", "content": error}
    return operation


def _manual_segment(summary: str) -> dict[str, Any]:
    operation = _cio(summary, {
        "type": "object",
        "required": ["ids"],
        "properties": {"ids": {"type": "array", "minItems": 1, "maxItems": 1000,
                               "items": {"type": ["string", "number"]}}},
    })
    operation["tags"] = ["Manual segments (Track API v1)"]
    operation["parameters"].append(
        {"name": "id_type", "in": "query", "required": False, "schema": {"const": "id"}}
    )
    operation["responses"]["404"] = {
        "description": "No such segment.",
        "content": {JSON: {"schema": {"$ref": "#/components/schemas/CustomerIoError"}}},
    }
    return operation


_LIMIT = ("limit", "integer", "At most this many (1 to 1000).")


def _common(extra: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    properties = {
        "userId": {"type": ["string", "number"]},
        "anonymousId": {"type": ["string", "number"]},
        "messageId": {"type": "string", "description": "Deduplicates track/page/screen."},
        "timestamp": {"type": "string", "format": "date-time"},
        "originalTimestamp": {"type": "string", "format": "date-time"},
        "sentAt": {"type": "string", "format": "date-time", "description": "Corrects clock skew."},
        "context": {"type": "object"},
        "integrations": {"type": "object"},
        "writeKey": {"type": "string"},
        **extra,
    }
    return {
        "type": "object",
        "properties": properties,
        "required": list(required),
        "anyOf": [{"required": ["userId"]}, {"required": ["anonymousId"]}],
    }


SCHEMAS: dict[str, Any] = {
    "CustomerIoError": _CIO_ERROR,
    "SegmentError": _SEGMENT_ERROR,
    "CustomerAttributes": {
        "type": "object",
        "description": "Attributes (at most 300; names 150 bytes, values 1000 bytes).",
        "maxProperties": 300,
        "properties": {
            "email": {"type": "string"},
            "created_at": {"type": "number", "description": "Unix seconds."},
            "unsubscribed": {"type": "boolean", "description": "Also moves the subscription state."},
            "anonymous_id": {"type": "string", "description": "Folds that anonymous person's events in."},
            "_update": {"type": "boolean", "description": "Only update an existing person."},
        },
        "additionalProperties": _ATTRIBUTE_VALUE,
    },
    "Event": {
        "type": "object",
        "required": ["name"],
        "properties": {
            "name": {"type": "string", "minLength": 1, "description": "At most 100 bytes."},
            "data": {"type": "object", "description": "At most 100,000 bytes."},
            "timestamp": {"type": "number", "description": "Unix seconds."},
            "id": {"type": "string", "description": "Deduplicates the event."},
            "type": {"enum": ["event", "page", "screen"]},
        },
    },
    "AnonymousEvent": {
        "allOf": [
            {"$ref": "#/components/schemas/Event"},
            {"required": ["anonymous_id"], "properties": {"anonymous_id": {"type": "string", "minLength": 1}}},
        ]
    },
    "Device": {
        "type": "object",
        "required": ["device"],
        "properties": {
            "device": {
                "type": "object",
                "required": ["id", "platform"],
                "properties": {
                    "id": {"type": "string", "minLength": 1},
                    "platform": {"enum": ["ios", "android"]},
                    "last_used": {"type": "number"},
                    "attributes": {"type": "object"},
                },
            }
        },
    },
    "Merge": {
        "type": "object",
        "required": ["primary", "secondary"],
        "properties": {
            "primary": {"$ref": "#/components/schemas/PersonRef"},
            "secondary": {"$ref": "#/components/schemas/PersonRef"},
        },
    },
    "PersonRef": {
        "type": "object",
        "required": ["id"],
        "properties": {"id": {"type": "string", "minLength": 1, "maxLength": 150}},
        "additionalProperties": False,
        "description": "Only `id`: `email` and `cio_id` references are refused with 400.",
    },
    "SegmentIdentify": _common({"traits": {"type": "object"}}),
    "SegmentTrack": _common({"event": {"type": "string"}, "properties": {"type": "object"}}, ("event",)),
    "SegmentPage": _common({"name": {"type": "string"}, "category": {"type": "string"}, "properties": {"type": "object"}}),
    "SegmentScreen": _common({"name": {"type": "string"}, "category": {"type": "string"}, "properties": {"type": "object"}}),
    "SegmentGroup": _common(
        {
            "groupId": {"type": ["string", "number"]},
            "traits": {"type": "object", "description": f"Stored on the person as `{GROUP_PREFIX}<trait>`."},
        },
        ("groupId",),
    ),
    "SegmentAlias": {
        "type": "object",
        "required": ["previousId", "userId"],
        "properties": {"previousId": {"type": "string"}, "userId": {"type": "string"}, "writeKey": {"type": "string"}},
        "description": "Merges the person `previousId` into `userId`.",
    },
    "SegmentMessage": {
        "type": "object",
        "required": ["type"],
        "properties": {"type": {"enum": ["identify", "track", "page", "screen", "group", "alias"]}},
        "description": "Any of the messages above, with its `type`.",
    },
    "SegmentBatch": {
        "type": "object",
        "required": ["batch"],
        "properties": {
            "batch": {"type": "array", "items": {"$ref": "#/components/schemas/SegmentMessage"}},
            "sentAt": {"type": "string", "format": "date-time"},
            "writeKey": {"type": "string"},
            "context": {"type": "object"},
        },
    },
}

PATHS: dict[str, dict[str, Any]] = {
    "/api/v1/customers/{id}": {
        "put": _cio("Identify: create or update a person", {"$ref": "#/components/schemas/CustomerAttributes"}),
        "delete": _cio("Delete a person"),
    },
    "/api/v1/customers/{id}/events": {
        "post": _cio("Track an event, page or screen view", {"$ref": "#/components/schemas/Event"}),
    },
    "/api/v1/events": {
        "post": _cio(
            "Track an anonymous event (person `anon:<anonymous_id>`)",
            {"$ref": "#/components/schemas/AnonymousEvent"},
            path_params=(),
        ),
        "get": _read_side(
            "The event catalog: every event seen, its properties with their JSON types, first/last seen, counts"
        ),
    },
    "/api/v1/activity": {
        "get": _read_side(
            "The latest inputs and what each changed, newest first",
            query=(
                ("person", "string", "Only this person's inputs."),
                ("kind", "string", "Only inputs of this kind (identify, track, delivery, ...)."),
                _LIMIT,
                ("before", "integer", "An activity id: older inputs only (the previous answer's `next_before`)."),
            ),
        ),
    },
    "/api/v1/customers/{id}/profile": {
        "get": _read_side(
            "A person: attributes, segments with entry times, journeys, messages with status and reason, recent activity",
            ("id",),
            found=True,
        ),
    },
    "/api/v1/campaigns/metrics": {
        "get": _read_side(
            "Per campaign: journeys entered, in progress, completed, exited, converted; per step: sent, failed, opened, clicked"
        ),
    },
    "/api/v1/segments": {"get": _read_side("Segments (defined or with members) and their member counts")},
    "/api/v1/segments/{id}/members": {
        "get": _read_side(
            "People in a segment, by id, with their entry times",
            ("id",),
            (_LIMIT, ("after", "string", "A person id: the previous answer's `next_after`.")),
        ),
    },
    "/api/v1/segments/{id}/add_customers": {"post": _manual_segment("Add people to a manual segment")},
    "/api/v1/segments/{id}/remove_customers": {"post": _manual_segment("Remove people from a manual segment")},
    "/api/v1/broadcasts": {
        "post": {
            "tags": ["Broadcasts"],
            "summary": "Send a campaign to everyone in a segment, scanned per partition (202 with its id)",
            "security": [{"trackBasic": []}],
            "requestBody": {"required": True, "content": {JSON: {"schema": {
                "type": "object",
                "required": ["campaign", "segment"],
                "properties": {
                    "campaign": {"type": "string"},
                    "segment": {"type": "string"},
                    "rate": {"type": "number", "description": "Sends per second, all partitions together."},
                    "dry_run": {"type": "boolean", "description": "Only count the members."},
                },
            }}}},
            "responses": {
                "200": {"description": "Dry run: {dry_run, members}.", "content": {JSON: {"schema": {"type": "object"}}}},
                "202": {"description": "Started: {id, members}.", "content": {JSON: {"schema": {"type": "object"}}}},
                **{
                    str(code): {"description": text, "content": {JSON: {"schema": {"$ref": "#/components/schemas/CustomerIoError"}}}}
                    for code, text in ((400, "The body or the campaign files are invalid."),
                                       (401, "Missing or wrong credentials."),
                                       (404, "Unknown campaign or segment."))
                },
            },
        },
    },
    "/api/v1/broadcasts/{id}": {
        "get": _read_side("A broadcast's progress per partition", ("id",), tag="Broadcasts", found=True),
    },
    "/api/v1/customers/{id}/devices": {
        "put": _cio("Add or update a device", {"$ref": "#/components/schemas/Device"}),
    },
    "/api/v1/customers/{id}/devices/{device_id}": {
        "delete": _cio("Remove a device", path_params=("id", "device_id")),
    },
    "/api/v1/customers/{id}/suppress": {"post": _cio("Suppress a person")},
    "/api/v1/customers/{id}/unsuppress": {"post": _cio("Unsuppress a person")},
    "/api/v1/merge_customers": {
        "post": _cio(
            "Merge the secondary person into the primary",
            {"$ref": "#/components/schemas/Merge"},
            path_params=(),
        ),
    },
    "/v1/identify": {"post": _segment("Identify", "SegmentIdentify")},
    "/v1/track": {"post": _segment("Track", "SegmentTrack")},
    "/v1/page": {"post": _segment("Page view", "SegmentPage")},
    "/v1/screen": {"post": _segment("Screen view", "SegmentScreen")},
    "/v1/group": {"post": _segment("Group (attributes of the person)", "SegmentGroup")},
    "/v1/alias": {"post": _segment("Alias (merge previousId into userId)", "SegmentAlias")},
    "/v1/batch": {"post": _segment("Batch of messages (at most 500 KB)", "SegmentBatch")},
    "/v1/import": {"post": _segment("Batch of messages (alias of /v1/batch)", "SegmentBatch")},
    "/webhooks/segment": {
        "post": _segment("Segment webhook destination (X-Signature when a secret is set)", "SegmentMessage", "Webhook destinations"),
    },
    "/webhooks/rudderstack": {
        "post": _segment("RudderStack webhook destination (X-Signature when a secret is set)", "SegmentMessage", "Webhook destinations"),
    },
    **{
        path: item
        for path, item in {
            "/unsubscribe/{token}": {
                "get": _page("Unsubscribe confirmation page (a GET never unsubscribes)"),
                "post": _page("Unsubscribe (RFC 8058 one-click, or the page's button)"),
            },
            "/preferences/{token}": {
                "get": _page("Subscription preferences page"),
                "post": _page("Save subscription preferences (form)", form=True),
            },
            "/o/{token}.gif": {"get": _page("Open-tracking pixel (always a GIF)", content="image/gif")},
            "/c/{token}": {"get": _page("Click tracking: 302 to `u` when signed", redirect=True)},
        }.items()
    },
    "/api/v1/messages/{message_id}": {
        "get": _read("Delivery status of a message", ("message_id",), found=True),
    },
    "/api/v1/suppressions": {"get": _read("Suppressed addresses")},
    "/api/v1/suppressions/{address}": {
        "put": _read("Suppress an address", ("address",), body={"type": "object", "properties": {"reason": {"type": "string"}, "detail": {}}}),
        "delete": _read("Unsuppress an address", ("address",), found=True),
    },
    "/v1/send/email": {
        "post": {
            "tags": ["Transactional (App API shape)"],
            "summary": "Send one transactional email now (Idempotency-Key deduplicates)",
            "security": [{"appBearer": []}, {"trackBasic": []}],
            "parameters": [{"name": "Idempotency-Key", "in": "header", "required": False, "schema": {"type": "string"}}],
            "requestBody": {
                "required": True,
                "content": {JSON: {"schema": {
                    "type": "object",
                    "properties": {
                        "transactional_message_id": {"type": ["string", "integer"]},
                        "template": {"type": "string"},
                        "to": {"type": "string"},
                        "identifiers": {"type": "object", "properties": {"id": {"type": ["string", "integer"]}, "email": {"type": "string"}}},
                        "message_data": {"type": "object"},
                    },
                }}},
            },
            "responses": {
                "200": {"description": "Queued in the outbox.", "content": {JSON: {"schema": {
                    "type": "object",
                    "properties": {"delivery_id": {"type": "string"}, "queued_at": {"type": "integer"},
                                   "recipient": {"type": "string"}, "duplicate": {"type": "boolean"}},
                }}}},
                **{
                    str(code): {"description": text, "content": {JSON: {"schema": {"$ref": "#/components/schemas/CustomerIoError"}}}}
                    for code, text in ((400, "The request breaks a rule."), (401, "Missing or wrong credentials."),
                                       (404, "Unknown template."), (500, "Templates cannot be loaded."))
                },
            },
        }
    },
    "/health": {
        "get": {
            "tags": ["Operations"],
            "summary": "Liveness",
            "responses": {"200": {"description": "Up.", "content": {JSON: {"schema": {"type": "object"}}}}},
        }
    },
    "/ready": {
        "get": {
            "tags": ["Operations"],
            "summary": "Readiness: Kafka and PostgreSQL answer",
            "responses": {
                "200": {"description": "Ready; each check with its detail.", "content": {JSON: {"schema": {"type": "object"}}}},
                "503": {"description": "A check failed; each check with its detail.", "content": {JSON: {"schema": {"type": "object"}}}},
            },
        }
    },
    "/metrics": {
        "get": {
            "tags": ["Operations"],
            "summary": "Prometheus metrics (counts only)",
            "responses": {"200": {"description": "Prometheus text exposition.", "content": {"text/plain": {"schema": {"type": "string"}}}}},
        }
    },
    "/openapi.json": {
        "get": {
            "tags": ["Operations"],
            "summary": "This document",
            "responses": {"200": {"description": "OpenAPI 3.1.", "content": {JSON: {"schema": {"type": "object"}}}}},
        }
    },
}


def openapi_document(server_url: str | None = None) -> dict[str, Any]:
    """The OpenAPI 3.1 document; `server_url` becomes its only server when given."""
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "Nudge ingestion API",
            "version": "1",
            "description": (
                "Customer.io Track API v1, Segment/RudderStack HTTP Tracking API and webhook "
                "destinations; every accepted request is durable in Kafka when it is answered."
            ),
        },
        "paths": PATHS,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {
                "trackBasic": {"type": "http", "scheme": "basic", "description": "site_id:api_key"},
                "writeKey": {"type": "http", "scheme": "basic", "description": "write key as the user, empty password"},
                "appBearer": {"type": "http", "scheme": "bearer", "description": "the api_key"},
            },
        },
    }
    if server_url:
        document["servers"] = [{"url": server_url}]
    return document


def openapi_routes(public_url: str | None = None) -> list[web.RouteDef]:
    """`GET /openapi.json`."""
    document = openapi_document(public_url)

    async def serve_document(request: web.Request) -> web.Response:
        return web.json_response(document)

    return [web.get("/openapi.json", serve_document)]
