"""Customer.io Track API v2: `POST /api/v2/entity` (one operation) and `/api/v2/batch` (many).

Operations on people become the same inputs as v1. Refused, with the reason in the answer:
`type: object` and `type: delivery` (Nudge models people only, and records its own delivery
metrics), `add_relationships` / `delete_relationships` and non-empty `cio_relationships` (no
objects to relate to), identifiers other than `id` (Nudge identifies people by id). A batch is
all or nothing: every refused operation is listed with its `batch_index`, and none is stored.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import orjson
from aiohttp import web
from pydantic import BaseModel

from schemas.inputs import Delete, Devices, Identify, Input, MergeInto, Suppress, Track, Unsubscribe
from schemas.track_api import (
    MAX_V2_BATCH_BYTES,
    MAX_V2_ENTITY_BYTES,
    V2_ACTIONS,
    V2_REFUSED_ACTIONS,
    V2_REFUSED_TYPES,
    V2AddDevice,
    V2Batch,
    V2DeleteDevice,
    V2Event,
    V2Identify,
    V2Lifecycle,
    V2Merge,
    V2Operation,
)
from streams.http.auth import TrackBasic
from streams.http.errors import ApiError
from streams.http.operations import Call, Operation, validate
from streams.http.publisher import Publish

TAG = "Track API v2 (Customer.io)"
# At most this many refused operations are listed in one answer.
MAX_LISTED_ERRORS = 50


def _model_for(data: Any, where: str) -> type[BaseModel]:
    if not isinstance(data, dict):
        raise ApiError(400, f"`{where or 'body'}` must be an object", field=where)
    prefix = f"{where}." if where else ""
    kind = data.get("type")
    if kind in V2_REFUSED_TYPES:
        raise ApiError(400, f"`{prefix}type`: {V2_REFUSED_TYPES[kind]}", field=f"{prefix}type")
    if kind != "person":
        raise ApiError(400, f"`{prefix}type` must be person", field=f"{prefix}type")
    action = data.get("action")
    if action in V2_REFUSED_ACTIONS:
        raise ApiError(400, f"`{prefix}action`: {V2_REFUSED_ACTIONS[action]}", field=f"{prefix}action")
    if not isinstance(action, str) or action not in V2_ACTIONS:
        raise ApiError(400, f"`{prefix}action` must be one of {', '.join(V2_ACTIONS)}", field=f"{prefix}action")
    return V2_ACTIONS[action]


def operation_inputs(operation: BaseModel, now: float) -> list[Input]:
    """The inputs one validated v2 operation means."""
    at = getattr(operation, "timestamp", None)
    at = now if at is None else at
    if isinstance(operation, V2Merge):
        return [MergeInto(person=operation.secondary.id, at=at, into=operation.primary.id)]
    assert isinstance(operation, (V2Identify, V2Event, V2AddDevice, V2DeleteDevice, V2Lifecycle))
    person = operation.identifiers.id
    if isinstance(operation, V2Identify):
        attributes = operation.attributes
        inputs: list[Input] = [Identify(person=person, at=at, attributes=attributes.attributes(),
                                        anonymous_id=attributes.anonymous_id, update_only=attributes.update)]
        if attributes.unsubscribed is not None:
            inputs.append(Unsubscribe(person=person, at=at, unsubscribed=attributes.unsubscribed))
        return inputs
    if isinstance(operation, V2Event):
        return [Track(person=person, at=at, name=operation.name, data=operation.attributes or {},
                      type=operation.action, event_id=operation.id)]
    if isinstance(operation, V2AddDevice):
        device = operation.device
        return [Devices(person=person, at=at, action="add", device_id=device.token, platform=device.platform,
                        last_used=device.last_used, attributes=device.attributes or {})]
    if isinstance(operation, V2DeleteDevice):
        return [Devices(person=person, at=at, action="remove", device_id=operation.device.token)]
    if operation.action == "delete":
        return [Delete(person=person, at=at)]
    return [Suppress(person=person, at=at, suppressed=operation.action == "suppress")]


def parse_operation(data: Any, where: str = "") -> BaseModel:
    """One operation validated with the model of its action; 400 naming the field otherwise."""
    model = _model_for(data, where)
    return validate(model, data, where=where)


def batch_operations(body: dict[str, Any]) -> list[BaseModel]:
    """Every operation of a batch, or one 400 listing each refused operation by `batch_index`."""
    batch = body.get("batch")
    if not isinstance(batch, list) or not batch:
        raise ApiError(400, "`batch` must be a non-empty array of operations", field="batch")
    operations: list[BaseModel] = []
    details: list[dict[str, Any]] = []
    for index, item in enumerate(batch):
        where = f"batch[{index}]"
        try:
            if len(orjson.dumps(item)) > MAX_V2_ENTITY_BYTES:
                raise ApiError(400, f"`{where}` is larger than {MAX_V2_ENTITY_BYTES} bytes", field=where)
            operations.append(parse_operation(item, where))
        except ApiError as exc:
            details.append({"batch_index": index, "reason": "invalid", "field": exc.field, "message": exc.message})
    if details:
        first = details[0]["message"]
        more = f" (and {len(details) - 1} more refused)" if len(details) > 1 else ""
        raise ApiError(400, f"{first}{more}; nothing in the batch was stored", field=details[0]["field"],
                       details=details[:MAX_LISTED_ERRORS])
    return operations


def track_v2_operations(
    publish: Publish, site_id: str, api_key: str, clock: Callable[[], float] = time.time
) -> list[Operation]:
    """`/api/v2/entity` and `/api/v2/batch`, with the Track API's credentials."""
    auth = TrackBasic(site_id, api_key)

    async def entity(call: Call) -> web.Response:
        now = clock()
        operation = parse_operation(call.body)
        await publish(operation_inputs(operation, now))
        return web.json_response({})

    async def batch(call: Call) -> web.Response:
        now = clock()
        inputs = [item for operation in batch_operations(call.body) for item in operation_inputs(operation, now)]
        await publish(inputs)
        return web.json_response({})

    return [
        Operation("POST", "/api/v2/entity", entity, "One operation on a person", TAG, auth=auth,
                  body=V2Operation, validate_body=False, body_limit=MAX_V2_ENTITY_BYTES,
                  errors=(400, 401, 413, 429, 503), family="v2"),
        Operation("POST", "/api/v2/batch", batch, "Operations on people, all stored or none", TAG, auth=auth,
                  body=V2Batch, validate_body=False, body_limit=MAX_V2_BATCH_BYTES,
                  errors=(400, 401, 413, 429, 503), family="v2"),
    ]
