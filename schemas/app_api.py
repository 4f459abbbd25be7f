"""Request bodies and query parameters of the App-API-side routes: transactional sends,
broadcasts, the suppression list and the read side.

Bodies are strict (parsed JSON); query parameters arrive as text, so their models convert
`"50"` to 50 and refuse `"abc"` with the parameter's name.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from schemas.addresses import AddressError, parse_email
from schemas.api_values import Flag, Identifier, JsonObject, Text

MAX_READ_LIMIT = 1000
MAX_SUPPRESSION_REASON_BYTES = 100
MAX_SUPPRESSION_DETAIL_BYTES = 1000
# A database cursor: activity ids are BIGINT.
MAX_CURSOR = 2**63 - 1


def _one_line(value: str | None) -> str | None:
    if value is not None and ("\r" in value or "\n" in value):
        raise ValueError("must be one line")
    return value


def _one_address(value: str | None) -> str | None:
    if value is None:
        return value
    try:
        parse_email(value)
    except AddressError as exc:
        raise ValueError(f"must be one email address: {exc}") from exc
    return value


class _Body(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)


class SendIdentifiers(BaseModel):
    """Who a transactional message is for: `{"id": ...}` or `{"email": ...}`."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    id: Identifier | None = None
    email: Annotated[str, Field(min_length=1)] | None = None

    _email = field_validator("email")(_one_address)

    @model_validator(mode="after")
    def _one_given(self) -> SendIdentifiers:
        if self.id is None and self.email is None:
            raise ValueError('needs `id` or `email`, e.g. {"id": "42"}')
        return self


class SendEmailBody(_Body):
    """`POST /v1/send/email`, the shape of Customer.io's App API."""

    model_config = ConfigDict(
        populate_by_name=True,
        json_schema_extra={"examples": [
            {"transactional_message_id": "welcome", "identifiers": {"id": "42"},
             "message_data": {"reset_url": "https://example.com/r/1"}},
            {"identifiers": {"email": "ana@example.com"}, "to": "ana@example.com",
             "subject": "Your receipt", "body": "<p>Thanks!</p>"},
        ]},
    )

    identifiers: SendIdentifiers
    transactional_message_id: Identifier | None = None
    template: Text | None = None
    to: Annotated[str, Field(min_length=1)] | None = Field(None, description="one bare address")
    message_data: JsonObject | None = None
    subject: Annotated[str, Field(min_length=1)] | None = None
    body: Annotated[str, Field(min_length=1)] | None = None
    from_: Annotated[str, Field(min_length=1)] | None = Field(None, alias="from")
    reply_to: Annotated[str, Field(min_length=1)] | None = None
    preheader: Annotated[str, Field(min_length=1)] | None = None

    _to = field_validator("to")(_one_address)
    _lines = field_validator("subject", "from_", "reply_to")(_one_line)

    def overrides(self) -> dict[str, str]:
        """The per-message overrides given (subject, body, from, reply_to, preheader)."""
        values = {"subject": self.subject, "body": self.body, "from": self.from_,
                  "reply_to": self.reply_to, "preheader": self.preheader}
        return {key: value.strip() if key != "body" else value
                for key, value in values.items() if value is not None}


class BroadcastBody(_Body):
    """`POST /api/v1/broadcasts`: send a campaign once to everyone in a segment."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"campaign": "spring_launch", "segment": "active_trials", "rate": 50},
        {"campaign": "spring_launch", "segment": "active_trials", "dry_run": True},
    ]})

    campaign: Text
    segment: Text
    rate: Annotated[float, Field(gt=0, le=1_000_000)] | None = Field(
        None, description="sends per second across partitions"
    )
    dry_run: Flag = False


class SuppressBody(_Body):
    """`PUT /api/v1/suppressions/{address}`."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"reason": "complaint", "detail": "by phone"}]})

    reason: Annotated[str, Field(min_length=1, max_length=MAX_SUPPRESSION_REASON_BYTES)] | None = None
    detail: Annotated[str, Field(max_length=MAX_SUPPRESSION_DETAIL_BYTES)] | None = None


class _Query(BaseModel):
    # Query values are text: "50" is the number 50 here.
    model_config = ConfigDict(extra="ignore", frozen=True)


Limit = Annotated[int, Field(ge=1, le=MAX_READ_LIMIT)]


class ActivityQuery(_Query):
    """`GET /api/v1/activity`: newest first, paged with `before`."""

    person: Text | None = None
    kind: Text | None = None
    limit: Limit = 50
    before: Annotated[int, Field(ge=1, le=MAX_CURSOR)] | None = None


class MembersQuery(_Query):
    """`GET /api/v1/segments/{id}/members`: paged with `after` (a person id)."""

    limit: Limit = 100
    after: Text | None = None


class ClickQuery(_Query):
    """`GET /c/{token}`: the destination, covered by the token's signature."""

    # Missing or altered, the link is refused (403) by its signature check, like any forgery.
    u: Annotated[str, Field(max_length=8192)] = ""


class PreferencesForm(BaseModel):
    """The preferences page's form: `topic:NAME=on` per chosen topic, `unsubscribe_all=on`."""

    model_config = ConfigDict(extra="allow", frozen=True)

    unsubscribe_all: Annotated[str, Field(pattern="^on$")] | None = None

