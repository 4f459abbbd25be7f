"""The person record's wire format: MessagePack through msgspec, and the recent events inside it.

Pure. One encoder and decoder per process (msgspec's are reusable and thread-safe). A raw
recent event is the MessagePack of one `Event`, so the record's bytes hold the history without
it being decoded on the hot path; `events` decodes it when something reads it.
"""

from __future__ import annotations

from typing import Any

import msgspec

from schemas.errors import StateError
from schemas.person import Event, PersonState

_encoder = msgspec.msgpack.Encoder()
_state_decoder = msgspec.msgpack.Decoder(PersonState)
_event_decoder = msgspec.msgpack.Decoder(Event)


class StateDecodeError(StateError, ValueError):
    """Stored bytes are not a person record this version can read; the message says why.

    Restore the state from its changelog (delete the worker's data dir) or run the version that wrote it."""


def encode_state(state: PersonState) -> bytes:
    """The record's bytes, as the people table and its changelog hold them."""
    return _encoder.encode(state)


def decode_state(raw: bytes) -> PersonState:
    """A record from its bytes (StateDecodeError if they are not one)."""
    try:
        return _state_decoder.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise StateDecodeError(f"not a person record: {exc}") from exc


def encode_event(event: Event) -> msgspec.Raw:
    """One event as it sits in `PersonState.recent`."""
    return msgspec.Raw(_encoder.encode(event))


def events(state: PersonState) -> list[Event]:
    """The person's recent events, oldest first, decoded."""
    return [_event_decoder.decode(raw) for raw in state.recent]


def state_to_builtins(state: PersonState) -> dict[str, Any]:
    """The record as plain JSON-able data (recent events decoded): what an `Absorb` input carries."""
    data: dict[str, Any] = msgspec.to_builtins(
        msgspec.structs.replace(state, recent=[], recent_bytes=0), builtin_types=(bytes,)
    )
    data["recent"] = [msgspec.to_builtins(e) for e in events(state)]
    if state.seen:
        data["seen"] = state.seen.hex()
    return data


def state_from_builtins(data: dict[str, Any]) -> PersonState:
    """The inverse of `state_to_builtins` (StateDecodeError on anything else)."""
    try:
        body = dict(data)
        recent = [msgspec.convert(e, Event) for e in body.pop("recent", [])]
        seen = bytes.fromhex(body.pop("seen", "") or "")
        state = msgspec.convert(body, PersonState)
    except (msgspec.ValidationError, ValueError, TypeError) as exc:
        raise StateDecodeError(f"not a person record: {exc}") from exc
    state.recent = [encode_event(e) for e in recent]
    state.recent_bytes = sum(len(r) for r in state.recent)
    state.seen = seen
    return state
