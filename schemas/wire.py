"""The input topic's wire format: JSON, one input or an envelope of inputs per Kafka message.

Producers that write to Kafka directly send one input per message, keyed by the person id
(see `schemas/input.schema.json`). Nudge's own ingestion sends envelopes, one per partition
per flush, because Faust's cost is per Kafka message (docs/architecture.md, "Speed").
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson
from pydantic import TypeAdapter, ValidationError

from schemas.commands import Activity, Command, JourneyEvent, PersonSnapshot
from schemas.errors import InputError
from schemas.inputs import Envelope, Input

_INPUT = TypeAdapter(Input)
_ENVELOPE = TypeAdapter(Envelope)
_COMMAND = TypeAdapter(Command)


class InvalidInput(InputError):
    """A message on the input topic is not a valid input; it goes to the dead-letter topic."""


def decode_inputs(raw: bytes | None) -> list[Input]:
    """Parse one Kafka message value into the inputs it carries (one, or an envelope's)."""
    return [item for item, _ in decode_input_items(raw)]


def decode_input_items(raw: bytes | None) -> list[tuple[Input, dict[str, Any]]]:
    """Like `decode_inputs`, each input with the JSON object it was read from."""
    if not raw:
        raise InvalidInput("empty message value: expected a JSON input or envelope")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise InvalidInput(f"expected a JSON object, got {type(data).__name__}")
    try:
        if "inputs" in data:
            envelope = _ENVELOPE.validate_python(data)
            return list(zip(envelope.inputs, data["inputs"], strict=True))
        return [(_INPUT.validate_python(data), data)]
    except ValidationError as exc:
        raise InvalidInput(_describe(exc)) from exc


def encode_input(item: Input) -> bytes:
    """One input as JSON bytes."""
    return item.model_dump_json(exclude_none=True).encode()


def encode_envelope(items: Iterable[Input]) -> bytes:
    """Several inputs (all on one partition) as one envelope's JSON bytes."""
    return b'{"inputs":[' + b",".join(encode_input(i) for i in items) + b"]}"


# Commands whose fields are all JSON values already: their validated `__dict__` is the JSON
# object, which orjson writes about ten times faster than pydantic's serializer.
_FLAT = (Activity, PersonSnapshot, JourneyEvent)


def encode_command(command: Command) -> bytes:
    """A command as JSON bytes."""
    if isinstance(command, _FLAT):
        return orjson.dumps(command.__dict__)
    return command.model_dump_json().encode()


def encode_commands(commands: Iterable[Command]) -> bytes:
    """Several commands as one message: `{"commands": [...]}`."""
    return b'{"commands":[' + b",".join(encode_command(c) for c in commands) + b"]}"


def decode_commands(raw: bytes) -> list[Command]:
    """The commands of one message: a single command or a `{"commands": [...]}` batch."""
    return [decode_command(item) for item in command_items(raw)]


def command_items(raw: bytes) -> list[Any]:
    """The JSON items of one command message, not yet validated (raises on invalid JSON)."""
    data = orjson.loads(raw)
    if isinstance(data, dict) and "commands" in data:
        return list(data["commands"])
    return [data]


def decode_command(item: Any) -> Command:
    """One command from its JSON item (a pydantic ValidationError when it is not one)."""
    return _COMMAND.validate_python(item)


def _describe(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors()[:5]:
        where = ".".join(str(p) for p in error["loc"]) or "(root)"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)
