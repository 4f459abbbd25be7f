"""Segment-spec messages (Segment, RudderStack, analytics.js, their webhook destinations) as inputs.

One mapping for every sender of the spec: `identify`, `track`, `page`, `screen`, `group`,
`alias`. Pure functions over `schemas.segment_messages`; the routes live in `segment_api.py`,
`browser_api.py` and `webhooks.py`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import orjson

from schemas.addresses import AddressError, parse_email
from schemas.inputs import ANONYMOUS_PREFIX, Identify, Input, MergeInto, Track, anonymous_person
from schemas.segment_messages import (
    MAX_BATCH_BYTES,
    MAX_MESSAGE_BYTES,
    MESSAGE_TYPES,
    SegmentBatch,
    SegmentMessage,
    message_context_traits,
)
from streams.http.errors import ApiError
from streams.http.validation import parse_model

__all__ = ["MAX_BATCH_BYTES", "MAX_MESSAGE_BYTES", "MESSAGE_TYPES", "batch_inputs", "event_time", "message_inputs"]

MAX_ID_BYTES = 150
MAX_EVENT_NAME_BYTES = 100
# Group traits become person attributes under this prefix (a person has one current group).
GROUP_PREFIX = "group_"
_MAX_ANONYMOUS_BYTES = MAX_ID_BYTES - len(ANONYMOUS_PREFIX)


def _id(value: str | None, key: str) -> str | None:
    if value is None or value == "":
        return None
    if len(value.encode()) > _MAX_ANONYMOUS_BYTES:
        raise ApiError(400, f"`{key}` is longer than {_MAX_ANONYMOUS_BYTES} bytes", field=key)
    return value


def person_of(message: SegmentMessage) -> str:
    """`userId`, else `anon:<anonymousId>`; a 400 ApiError when neither is given."""
    user_id = _id(message.userId, "userId")
    if user_id is not None:
        return user_id
    anonymous_id = _id(message.anonymousId, "anonymousId")
    if anonymous_id is not None:
        return anonymous_person(anonymous_id)
    raise ApiError(400, "`userId` or `anonymousId` is required", field="userId")


def parse_time(value: Any, key: str) -> float | None:
    """An ISO 8601 timestamp (or Unix seconds) as Unix seconds; None when absent."""
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, str):
        raise ApiError(400, f"`{key}` must be an ISO 8601 timestamp", field=key)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError as exc:
        raise ApiError(400, f"`{key}` is not an ISO 8601 timestamp: {value[:40]!r}", field=key) from exc
    if parsed.tzinfo is None:
        raise ApiError(400, f"`{key}` needs a time zone (e.g. a trailing Z): {value[:40]!r}", field=key)
    try:
        return parsed.timestamp()
    except (OverflowError, OSError, ValueError) as exc:
        raise ApiError(400, f"`{key}` is out of range: {value[:40]!r}", field=key) from exc


def event_time(message: SegmentMessage, now: float, batch_sent_at: Any = None) -> float:
    """When it happened: `timestamp` corrected for the sender's clock skew by `sentAt`.

    Segment's rule: timestamp + (received - sentAt) when both are given; without a
    `timestamp`, `originalTimestamp` takes its place; with neither it is now.
    """
    timestamp = parse_time(message.timestamp, "timestamp")
    if timestamp is None:
        timestamp = parse_time(message.originalTimestamp, "originalTimestamp")
    if timestamp is None:
        return now
    sent_at = parse_time(message.sentAt if message.sentAt is not None else batch_sent_at, "sentAt")
    at = timestamp if sent_at is None else timestamp + (now - sent_at)
    if not 0 <= at < 1e11:
        raise ApiError(400, "`timestamp` is outside 1970..5138", field="timestamp")
    return at


def _track(person: str, at: float, name: Any, data: dict[str, Any], kind: str, event_id: str | None) -> Track:
    if not isinstance(name, str) or not name.strip():
        raise ApiError(400, "`event` must be a non-empty string", field="event")
    if len(name.encode()) > MAX_EVENT_NAME_BYTES:
        raise ApiError(400, f"the event name is longer than {MAX_EVENT_NAME_BYTES} bytes", field="event")
    return Track(person=person, at=at, name=name, data=data, type=kind, event_id=event_id)


def _checked_email(attributes: dict[str, Any], where: str) -> dict[str, Any]:
    email = attributes.get("email")
    if email not in (None, ""):
        try:
            parse_email(email)
        except AddressError as exc:
            raise ApiError(400, f"`{where}.email` must be one email address: {exc}", field=f"{where}.email") from exc
    return attributes


def message_inputs(
    kind: str, message: SegmentMessage | Mapping[str, Any], now: float, batch_sent_at: Any = None
) -> list[Input]:
    """One Segment-spec message of type `kind` as the inputs it means."""
    if not isinstance(message, SegmentMessage):
        if len(orjson.dumps(message)) > MAX_MESSAGE_BYTES:
            raise ApiError(400, f"a message is larger than {MAX_MESSAGE_BYTES} bytes (Segment's limit)")
        message = parse_model(SegmentMessage, message)
    at = event_time(message, now, batch_sent_at)
    if kind == "alias":
        previous, user_id = _id(message.previousId, "previousId"), _id(message.userId, "userId")
        if previous is None or user_id is None:
            raise ApiError(400, "alias needs `previousId` and `userId`", field="previousId")
        if previous == user_id:
            raise ApiError(400, "alias: `previousId` and `userId` are the same", field="previousId")
        return [MergeInto(person=previous, at=at, into=user_id)]
    person = person_of(message)
    if kind == "identify":
        user_id, anonymous_id = _id(message.userId, "userId"), _id(message.anonymousId, "anonymousId")
        attributes = {**message_context_traits(message), **(message.traits or {})}
        return [
            Identify(
                person=person,
                at=at,
                attributes=_checked_email(attributes, "traits"),
                anonymous_id=anonymous_id if user_id is not None else None,
            )
        ]
    if kind == "group":
        group_id = _id(message.groupId, "groupId")
        if group_id is None:
            raise ApiError(400, "group needs `groupId`", field="groupId")
        attributes = {f"{GROUP_PREFIX}id": group_id}
        attributes.update({GROUP_PREFIX + k: v for k, v in (message.traits or {}).items()})
        return [Identify(person=person, at=at, attributes=attributes)]
    properties = message.properties or {}
    if kind == "track":
        return [_track(person, at, message.event, properties, "event", message.messageId)]
    if kind in ("page", "screen"):
        name = message.name or properties.get("name") or kind
        data = dict(properties)
        if message.category is not None:
            data.setdefault("category", message.category)
        return [_track(person, at, name, data, kind, message.messageId)]
    raise ApiError(400, f"unknown message type {kind!r}: expected one of {', '.join(MESSAGE_TYPES)}", field="type")


def batch_inputs(body: SegmentBatch | Mapping[str, Any], now: float, *, allowed: tuple[str, ...] = MESSAGE_TYPES) -> list[Input]:
    """A `/v1/batch` body: every message must be valid, or the whole batch is refused.

    `allowed` narrows the message types (the browser key cannot alias).
    """
    if not isinstance(body, SegmentBatch):
        body = parse_model(SegmentBatch, body)
    inputs: list[Input] = []
    for index, message in enumerate(body.batch):
        try:
            if message.type not in allowed:
                raise ApiError(403, f"`type` {message.type} is not allowed with this key", field="type")
            if len(orjson.dumps(message.model_dump(exclude_unset=True))) > MAX_MESSAGE_BYTES:
                raise ApiError(400, f"a message is larger than {MAX_MESSAGE_BYTES} bytes (Segment's limit)")
            inputs.extend(message_inputs(message.type, message, now, body.sentAt))
        except ApiError as exc:
            where = f"batch[{index}]"
            field = f"{where}.{exc.field}" if exc.field else where
            raise ApiError(exc.status, f"{where}: {exc.message}", field=field) from exc
    return inputs
