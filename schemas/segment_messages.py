"""Segment-spec messages (Segment, RudderStack, Customer.io Data Pipelines, analytics.js).

One model for every sender of the spec; `streams/http/segment_spec.py` maps a validated
message to inputs. Unknown fields (`context`, `integrations`, `channel` ...) are kept and
ignored, as Segment does.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.api_values import Identifier, JsonObject

MESSAGE_TYPES = ("identify", "track", "page", "screen", "group", "alias")
MessageType = Literal["identify", "track", "page", "screen", "group", "alias"]
# Segment's documented limits.
MAX_MESSAGE_BYTES = 32 * 1024
MAX_BATCH_BYTES = 500 * 1024

# ISO 8601 with a zone (Segment), or Unix seconds.
Timestamp = Annotated[
    str | int | float,
    Field(json_schema_extra={"description": "ISO 8601 with a time zone, or Unix seconds"}),
]


class SegmentMessage(BaseModel):
    """One message; `type` is implied by the route for `/v1/identify` ... `/v1/alias`."""

    model_config = ConfigDict(
        strict=True, extra="allow", frozen=True,
        json_schema_extra={"examples": [
            {"type": "identify", "userId": "42", "anonymousId": "5f2a", "traits": {"email": "ana@example.com"}},
            {"type": "track", "userId": "42", "event": "Signed Up", "properties": {"plan": "trial"},
             "messageId": "m-1", "timestamp": "2026-01-05T10:00:00Z"},
            {"type": "page", "anonymousId": "5f2a", "name": "Pricing", "properties": {"url": "https://example.com/pricing"}},
            {"type": "alias", "previousId": "5f2a", "userId": "42"},
        ]},
    )

    type: MessageType | None = None
    userId: Identifier | None = None
    anonymousId: Identifier | None = None
    previousId: Identifier | None = None
    groupId: Identifier | None = None
    traits: JsonObject | None = None
    properties: JsonObject | None = None
    context: JsonObject | None = None
    event: str | None = None
    name: str | None = None
    category: str | None = None
    messageId: str | None = None
    timestamp: Timestamp | None = None
    originalTimestamp: Timestamp | None = None
    sentAt: Timestamp | None = None
    writeKey: str | None = None


class TypedSegmentMessage(SegmentMessage):
    """A message inside a batch or a webhook delivery: `type` is required."""

    type: MessageType


class SegmentBatch(BaseModel):
    """`POST /v1/batch`: every message valid, or the whole batch refused."""

    model_config = ConfigDict(
        strict=True, extra="allow", frozen=True,
        json_schema_extra={"examples": [
            {"batch": [{"type": "track", "userId": "42", "event": "Signed Up"},
                       {"type": "identify", "userId": "42", "traits": {"plan": "pro"}}],
             "sentAt": "2026-01-05T10:00:01Z"},
        ]},
    )

    batch: list[TypedSegmentMessage]
    sentAt: Timestamp | None = None
    writeKey: str | None = None
    context: JsonObject | None = None


def message_context_traits(message: SegmentMessage) -> dict[str, Any]:
    """RudderStack's SDKs send identify traits in `context.traits` only."""
    traits = (message.context or {}).get("traits")
    return traits if isinstance(traits, dict) else {}
