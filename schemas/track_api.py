"""Request bodies of the Customer.io Track API (v1 and v2) and of manual segments.

The HTTP edge validates each body against its model (strict: no string taken for a number)
and the OpenAPI document is generated from these models, so the two cannot drift. Limits and
wording are Customer.io's where they document them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from schemas.api_values import EmailAttribute, Flag, Identifier, JsonObject, Text, UnixSeconds

MAX_ATTRIBUTES = 300
MAX_ATTRIBUTE_NAME_BYTES = 150
MAX_ATTRIBUTE_VALUE_BYTES = 1000
MAX_EVENT_NAME_BYTES = 100
MAX_EVENT_DATA_BYTES = 100_000
MAX_SEGMENT_IDS = 1000
# Keys of an identify body that steer Nudge instead of becoming attributes.
IDENTIFY_CONTROL_KEYS = ("_update", "anonymous_id")


def check_attributes(attributes: dict[str, Any]) -> None:
    """Customer.io's attribute limits: count, name length, serialized value length."""
    if len(attributes) > MAX_ATTRIBUTES:
        raise ValueError(
            f"cannot identify more than {MAX_ATTRIBUTES} attributes in one request (got {len(attributes)})"
        )
    for name, value in attributes.items():
        if not name:
            raise ValueError("attribute name cannot be empty")
        if len(name.encode()) > MAX_ATTRIBUTE_NAME_BYTES:
            raise ValueError(
                f"attribute name cannot be longer than {MAX_ATTRIBUTE_NAME_BYTES} bytes ({name[:40]!r}...)"
            )
        if len(orjson.dumps(value)) > MAX_ATTRIBUTE_VALUE_BYTES:
            raise ValueError(
                f"value for attribute '{name}' cannot be longer than {MAX_ATTRIBUTE_VALUE_BYTES} bytes"
            )


def _event_name(value: str) -> str:
    if len(value.encode()) > MAX_EVENT_NAME_BYTES:
        raise ValueError(f"event name cannot be longer than {MAX_EVENT_NAME_BYTES} bytes")
    return value


def _event_data(value: dict[str, Any] | None) -> dict[str, Any] | None:
    if value is not None and len(orjson.dumps(value)) > MAX_EVENT_DATA_BYTES:
        raise ValueError(f"event data cannot be longer than {MAX_EVENT_DATA_BYTES} bytes")
    return value


class _Body(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)


class IdentifyBody(BaseModel):
    """`PUT /api/v1/customers/{id}`: every key is an attribute but `_update` and `anonymous_id`."""

    model_config = ConfigDict(
        strict=True, extra="allow", frozen=True, populate_by_name=True,
        json_schema_extra={"examples": [
            {"email": "ana@example.com", "first_name": "Ana", "created_at": 1700000000, "plan": "trial"},
            {"_update": True, "plan": "pro", "unsubscribed": False},
            {"anonymous_id": "cookie-5f2a", "email": "bo@example.com"},
        ]},
    )

    email: EmailAttribute | None = None
    created_at: UnixSeconds | None = None
    # Kept as an attribute too; also yields an Unsubscribe input, which gates marketing sends.
    unsubscribed: Flag | None = None
    update: Flag = Field(False, alias="_update", description="only update an existing person")
    anonymous_id: Text | None = Field(None, description="that anonymous person's events fold into this one")

    @model_validator(mode="after")
    def _limits(self) -> IdentifyBody:
        check_attributes(self.attributes())
        return self

    def attributes(self) -> dict[str, Any]:
        """The attributes this identify sets, as sent."""
        named: dict[str, Any] = {
            name: getattr(self, name)
            for name in ("email", "created_at", "unsubscribed")
            if name in self.model_fields_set
        }
        return {**named, **(self.model_extra or {})}


class TrackBody(_Body):
    """`POST /api/v1/customers/{id}/events`: an event, page view or screen view."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"name": "signed_up", "data": {"plan": "trial"}, "id": "01HZX3", "timestamp": 1700000000},
        {"name": "/pricing", "type": "page", "data": {"referrer": "ad"}},
    ]})

    name: Text = Field(description=f"at most {MAX_EVENT_NAME_BYTES} bytes")
    data: JsonObject | None = None
    timestamp: UnixSeconds | None = None
    id: Text | None = Field(None, description="the producer's id: a repeated id is one event")
    type: Literal["event", "page", "screen"] = "event"

    _name = field_validator("name")(_event_name)
    _data = field_validator("data")(_event_data)


class AnonymousTrackBody(TrackBody):
    """`POST /api/v1/events`: an event of the anonymous person `anon:<anonymous_id>`."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"name": "viewed_pricing", "anonymous_id": "cookie-5f2a", "data": {"plan": "team"}},
    ]})

    anonymous_id: Text


class DeviceFields(BaseModel):
    """A push device; fields beside these become device attributes (as customerio-python sends)."""

    model_config = ConfigDict(strict=True, extra="allow", frozen=True)

    id: Text
    platform: Literal["ios", "android"]
    last_used: UnixSeconds | None = None
    attributes: JsonObject | None = None

    def all_attributes(self) -> dict[str, Any]:
        """Extra fields and `attributes` together, `attributes` winning."""
        return {**(self.model_extra or {}), **(self.attributes or {})}

    @model_validator(mode="after")
    def _limits(self) -> DeviceFields:
        check_attributes(self.all_attributes())
        return self


class DeviceBody(_Body):
    """`PUT /api/v1/customers/{id}/devices`."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"device": {"id": "fcm-token-1", "platform": "android", "last_used": 1700000000}},
    ]})

    device: DeviceFields


class PersonRef(BaseModel):
    """A person in a merge: `{"id": ...}`; Nudge identifies people by id only."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    id: Identifier

    @model_validator(mode="before")
    @classmethod
    def _by_id_only(cls, value: Any) -> Any:
        if isinstance(value, dict):
            for kind in ("email", "cio_id"):
                if kind in value:
                    raise ValueError(f"`{kind}`: Nudge identifies people by `id` only; merge by id")
            if len(value) != 1:
                raise ValueError('must have exactly one identifier, e.g. {"id": "42"}')
        return value


class MergeBody(_Body):
    """`POST /api/v1/merge_customers`: `secondary` is folded into `primary`, then erased."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"primary": {"id": "42"}, "secondary": {"id": "anon-dup-42"}},
    ]})

    primary: PersonRef
    secondary: PersonRef

    @model_validator(mode="after")
    def _different(self) -> MergeBody:
        if self.primary.id == self.secondary.id:
            raise ValueError("primary and secondary are the same person")
        return self


class SegmentIdsBody(_Body):
    """`POST /api/v1/segments/{id}/add_customers` and `remove_customers`."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"ids": ["42", "43", 44]}]})

    ids: Annotated[list[Identifier], Field(min_length=1, max_length=MAX_SEGMENT_IDS)]


class SegmentIdsQuery(_Body):
    """Query of the manual segment routes: Nudge identifies people by `id` only."""

    id_type: Literal["id"] = "id"

    @field_validator("id_type", mode="before")
    @classmethod
    def _by_id_only(cls, value: Any) -> Any:
        if value != "id":
            raise ValueError(f"must be id: Nudge identifies people by `id` only (got {str(value)[:20]!r})")
        return value


# --- Track API v2 (`/api/v2/entity`, `/api/v2/batch`) ------------------------------------------

MAX_V2_ENTITY_BYTES = 32 * 1024
MAX_V2_BATCH_BYTES = 500 * 1024


class V2Identifiers(BaseModel):
    """Who the operation is about; Nudge identifies people by `id` only."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    id: Identifier

    @model_validator(mode="before")
    @classmethod
    def _by_id_only(cls, value: Any) -> Any:
        if isinstance(value, dict) and "id" not in value:
            given = ", ".join(f"`{k}`" for k in value) or "nothing"
            raise ValueError(f"Nudge identifies people by `id` only (got {given})")
        return value


class _V2Person(_Body):
    type: Literal["person"]
    identifiers: V2Identifiers
    timestamp: UnixSeconds | None = None


class V2Identify(_V2Person):
    """Create or update a person (`action: identify`)."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"type": "person", "identifiers": {"id": "42"}, "action": "identify",
         "attributes": {"email": "ana@example.com", "plan": "trial"}},
    ]})

    action: Literal["identify"]
    attributes: IdentifyBody = Field(default_factory=IdentifyBody)
    cio_relationships: list[JsonObject] | None = Field(
        None, description="refused when not empty: Nudge has no objects to relate people to"
    )

    @field_validator("cio_relationships")
    @classmethod
    def _no_relationships(cls, value: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
        if value:
            raise ValueError("relationships are not supported: Nudge models people, not objects")
        return value


class V2Event(_V2Person):
    """An event, page view or screen view (`action: event | page | screen`)."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"type": "person", "identifiers": {"id": "42"}, "action": "event", "name": "signed_up",
         "id": "01HZX3", "timestamp": 1700000000, "attributes": {"plan": "trial"}},
        {"type": "person", "identifiers": {"id": "42"}, "action": "page", "name": "/pricing"},
    ]})

    action: Literal["event", "page", "screen"]
    name: Text = Field(description=f"at most {MAX_EVENT_NAME_BYTES} bytes")
    id: Text | None = None
    attributes: JsonObject | None = None

    _name = field_validator("name")(_event_name)
    _data = field_validator("attributes")(_event_data)


class V2Device(BaseModel):
    """A device in v2: `token` is its id."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    token: Text
    platform: Literal["ios", "android"] | None = None
    last_used: UnixSeconds | None = None
    attributes: JsonObject | None = None


class V2AddDevice(_V2Person):
    """Add or update a device (`action: add_device`)."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"type": "person", "identifiers": {"id": "42"}, "action": "add_device",
         "device": {"token": "fcm-token-1", "platform": "android"}},
    ]})

    action: Literal["add_device"]
    device: V2Device

    @model_validator(mode="after")
    def _platform(self) -> V2AddDevice:
        if self.device.platform is None:
            raise ValueError("`device.platform` is required: one of ios, android")
        check_attributes(self.device.attributes or {})
        return self


class V2DeleteDevice(_V2Person):
    """Remove a device (`action: delete_device`)."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"type": "person", "identifiers": {"id": "42"}, "action": "delete_device",
         "device": {"token": "fcm-token-1"}},
    ]})

    action: Literal["delete_device"]
    device: V2Device


class V2Lifecycle(_V2Person):
    """Erase, suppress or unsuppress a person (`action: delete | suppress | unsuppress`)."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"type": "person", "identifiers": {"id": "42"}, "action": "suppress"},
    ]})

    action: Literal["delete", "suppress", "unsuppress"]


class V2Merge(_Body):
    """Fold `secondary` into `primary` (`action: merge`)."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"type": "person", "action": "merge", "primary": {"id": "42"}, "secondary": {"id": "43"}},
    ]})

    type: Literal["person"]
    action: Literal["merge"]
    primary: PersonRef
    secondary: PersonRef
    timestamp: UnixSeconds | None = None


V2Operation = Annotated[
    V2Identify | V2Event | V2AddDevice | V2DeleteDevice | V2Lifecycle | V2Merge,
    Field(discriminator="action"),
]
# The model each person action is validated with.
V2_ACTIONS: dict[str, type[BaseModel]] = {
    "identify": V2Identify,
    "event": V2Event,
    "page": V2Event,
    "screen": V2Event,
    "add_device": V2AddDevice,
    "delete_device": V2DeleteDevice,
    "delete": V2Lifecycle,
    "suppress": V2Lifecycle,
    "unsuppress": V2Lifecycle,
    "merge": V2Merge,
}
# What Customer.io documents and Nudge refuses, with the reason given to the client.
V2_REFUSED_ACTIONS = {
    "add_relationships": "relationships are not supported: Nudge models people, not objects",
    "delete_relationships": "relationships are not supported: Nudge models people, not objects",
}
V2_REFUSED_TYPES = {
    "object": "objects (type `object`) are not supported: Nudge models people only",
    "delivery": "delivery metrics (type `delivery`) are recorded by Nudge itself from its own sends",
}


class V2Batch(_Body):
    """`POST /api/v2/batch`: up to 500 KB of operations, all accepted or none."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"batch": [
            {"type": "person", "identifiers": {"id": "42"}, "action": "identify",
             "attributes": {"email": "ana@example.com"}},
            {"type": "person", "identifiers": {"id": "42"}, "action": "event", "name": "signed_up"},
        ]},
    ]})

    batch: Annotated[list[V2Operation], Field(min_length=1)]
