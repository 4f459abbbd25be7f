"""Segment-spec messages (Segment, RudderStack, their webhook destinations) turned into inputs.

One mapping for every sender of the spec: `identify`, `track`, `page`, `screen`, `group`,
`alias`. Pure functions; the routes live in `segment_api.py` and `webhooks.py`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from pydantic import ValidationError

from schemas.inputs import ANONYMOUS_PREFIX, Identify, Input, MergeInto, Track, anonymous_person
from streams.http.errors import ApiError
from streams.http.track_api import MAX_ID_BYTES

MESSAGE_TYPES = ("identify", "track", "page", "screen", "group", "alias")
# Segment's documented limits.
MAX_MESSAGE_BYTES = 32 * 1024
MAX_BATCH_BYTES = 500 * 1024
MAX_EVENT_NAME_BYTES = 100
# Group traits become person attributes under this prefix (a person has one current group).
GROUP_PREFIX = "group_"


def _id(message: dict[str, Any], key: str) -> str | None:
    value = message.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)  # Segment accepts numeric ids and treats them as strings
    if not isinstance(value, str):
        raise ApiError(400, f"`{key}` must be a string")
    if len(value.encode()) > MAX_ID_BYTES - len(ANONYMOUS_PREFIX):
        raise ApiError(400, f"`{key}` is longer than {MAX_ID_BYTES - len(ANONYMOUS_PREFIX)} bytes")
    return value


def person_of(message: dict[str, Any]) -> str:
    """`userId`, else `anon:<anonymousId>`; a 400 ApiError when neither is given."""
    user_id = _id(message, "userId")
    if user_id is not None:
        return user_id
    anonymous_id = _id(message, "anonymousId")
    if anonymous_id is not None:
        return anonymous_person(anonymous_id)
    raise ApiError(400, "`userId` or `anonymousId` is required")


def parse_time(value: Any, key: str) -> float | None:
    """An ISO 8601 timestamp (or Unix seconds) as Unix seconds; None when absent."""
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, str):
        raise ApiError(400, f"`{key}` must be an ISO 8601 timestamp")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError as exc:
        raise ApiError(400, f"`{key}` is not an ISO 8601 timestamp: {value[:40]!r}") from exc
    if parsed.tzinfo is None:
        raise ApiError(400, f"`{key}` needs a time zone (e.g. a trailing Z): {value[:40]!r}")
    return parsed.timestamp()


def event_time(message: dict[str, Any], now: float, batch_sent_at: Any = None) -> float:
    """When it happened: `timestamp` corrected for the sender's clock skew by `sentAt`.

    Segment's rule: timestamp + (received − sentAt) when both are given; without a
    `timestamp`, `originalTimestamp` takes its place; with neither it is now.
    """
    timestamp = parse_time(message.get("timestamp"), "timestamp")
    if timestamp is None:
        timestamp = parse_time(message.get("originalTimestamp"), "originalTimestamp")
    if timestamp is None:
        return now
    sent_at = parse_time(message.get("sentAt", batch_sent_at), "sentAt")
    if sent_at is None:
        return timestamp
    return timestamp + (now - sent_at)


def _object(message: dict[str, Any], key: str) -> dict[str, Any]:
    value = message.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ApiError(400, f"`{key}` must be an object")
    return value


def _message_id(message: dict[str, Any]) -> str | None:
    value = message.get("messageId")
    if value is None:
        return None
    if not isinstance(value, str):
        raise ApiError(400, "`messageId` must be a string")
    return value


def _track(person: str, at: float, name: Any, data: dict[str, Any], kind: str, event_id: str | None) -> Track:
    if not isinstance(name, str) or not name.strip():
        raise ApiError(400, "`event` must be a non-empty string")
    if len(name.encode()) > MAX_EVENT_NAME_BYTES:
        raise ApiError(400, f"the event name is longer than {MAX_EVENT_NAME_BYTES} bytes")
    try:
        return Track(person=person, at=at, name=name, data=data, type=kind, event_id=event_id)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise ApiError(400, str(exc.errors()[0]["msg"])) from exc


def message_inputs(
    kind: str, message: dict[str, Any], now: float, batch_sent_at: Any = None
) -> list[Input]:
    """One Segment-spec message of type `kind` as the inputs it means."""
    if len(orjson.dumps(message)) > MAX_MESSAGE_BYTES:
        raise ApiError(400, f"a message is larger than {MAX_MESSAGE_BYTES} bytes (Segment's limit)")
    at = event_time(message, now, batch_sent_at)
    if kind == "alias":
        previous, user_id = _id(message, "previousId"), _id(message, "userId")
        if previous is None or user_id is None:
            raise ApiError(400, "alias needs `previousId` and `userId`")
        if previous == user_id:
            raise ApiError(400, "alias: `previousId` and `userId` are the same")
        return [MergeInto(person=previous, at=at, into=user_id)]
    person = person_of(message)
    if kind == "identify":
        user_id, anonymous_id = _id(message, "userId"), _id(message, "anonymousId")
        return [
            Identify(
                person=person,
                at=at,
                # RudderStack's SDKs send identify traits in `context.traits` only.
                attributes={**_object(_object(message, "context"), "traits"), **_object(message, "traits")},
                anonymous_id=anonymous_id if user_id is not None else None,
            )
        ]
    if kind == "group":
        group_id = _id(message, "groupId")
        if group_id is None:
            raise ApiError(400, "group needs `groupId`")
        traits = _object(message, "traits")
        attributes = {f"{GROUP_PREFIX}id": group_id}
        attributes.update({GROUP_PREFIX + k: v for k, v in traits.items()})
        return [Identify(person=person, at=at, attributes=attributes)]
    properties = _object(message, "properties")
    if kind == "track":
        return [_track(person, at, message.get("event"), properties, "event", _message_id(message))]
    if kind in ("page", "screen"):
        name = message.get("name") or properties.get("name") or kind
        data = dict(properties)
        if message.get("category") is not None:
            data.setdefault("category", message["category"])
        return [_track(person, at, name, data, kind, _message_id(message))]
    raise ApiError(400, f"unknown message type {kind!r}: expected one of {', '.join(MESSAGE_TYPES)}")


def batch_inputs(body: dict[str, Any], now: float) -> list[Input]:
    """A `/v1/batch` body: every message must be valid, or the whole batch is refused."""
    batch = body.get("batch")
    if not isinstance(batch, list):
        raise ApiError(400, "the body needs a `batch` array of messages")
    inputs: list[Input] = []
    for index, message in enumerate(batch):
        if not isinstance(message, dict):
            raise ApiError(400, f"batch[{index}] must be an object")
        kind = message.get("type")
        if kind not in MESSAGE_TYPES:
            raise ApiError(
                400, f"batch[{index}]: `type` must be one of {', '.join(MESSAGE_TYPES)}"
            )
        try:
            inputs.extend(message_inputs(kind, message, now, body.get("sentAt")))
        except ApiError as exc:
            raise ApiError(exc.status, f"batch[{index}]: {exc.message}") from exc
    return inputs
