"""The field types request bodies are made of: one vocabulary, each with the message it refuses with.

Every message is a predicate (“must be …”) that the HTTP edge prefixes with the field's path,
so a client reads "`data.amount` must be a number". Request models validate parsed JSON in
strict mode: a string is never taken for a number, nor a number for a boolean.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, Strict, WithJsonSchema

from schemas.addresses import AddressError, parse_email

# Customer.io's limit on ids (person ids, event ids, device ids).
MAX_ID_BYTES = 150
# Unix seconds before this are 1970..5138; anything larger is milliseconds sent by mistake.
MAX_UNIX_SECONDS = 1e11


def _unix_seconds(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError("must be Unix seconds (a number)")
    if not 0 <= value < MAX_UNIX_SECONDS:
        raise ValueError("must be Unix seconds (between 1970 and 5138; milliseconds are too large)")
    return float(value)


def _number_to_text(value: Any) -> Any:
    # Segment and Customer.io accept numeric ids and treat them as strings.
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)
    return value


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    if len(value.encode()) > MAX_ID_BYTES:
        raise ValueError(f"must be at most {MAX_ID_BYTES} bytes")
    return value


def _email(value: str) -> str:
    if value == "":
        return value  # an empty email clears the address, as in Customer.io
    try:
        parse_email(value)
    except AddressError as exc:
        raise ValueError(f"must be one email address: {exc}") from exc
    return value


UnixSeconds = Annotated[
    float,
    BeforeValidator(_unix_seconds),
    WithJsonSchema({"type": "number", "minimum": 0, "exclusiveMaximum": MAX_UNIX_SECONDS,
                    "description": "Unix seconds"}),
]
Flag = Annotated[bool, Strict()]
# A non-blank string of at most 150 bytes: person, event and device ids, names.
Text = Annotated[str, Strict(), Field(min_length=1), AfterValidator(_not_blank)]
# The same, where clients may also send a number (Segment's userId, Customer.io's ids).
Identifier = Annotated[
    str,
    BeforeValidator(_number_to_text),
    Strict(),
    AfterValidator(_not_blank),
    WithJsonSchema({"type": ["string", "integer"], "minLength": 1,
                    "description": "a string (numbers are taken as their text), at most 150 bytes"}),
]
# An `email` attribute: exactly one bare address (schemas/addresses.py), or "" to clear it.
EmailAttribute = Annotated[
    str,
    Strict(),
    AfterValidator(_email),
    WithJsonSchema({"type": "string", "format": "email", "maxLength": 254,
                    "description": "one bare address (no display name, list or group); \"\" clears it"}),
]
JsonObject = Annotated[dict[str, Any], Strict()]
