"""A small helper for Python backends that produce to Nudge's input topic directly.

    producer = NudgeProducer("kafka:9092", "nudge-input")
    await producer.start()
    await producer.identify("ana", email="ana@example.com")
    await producer.track("ana", "signed_up", plan="trial")
    await producer.stop()

One input per Kafka message, keyed by the person id (so it lands on that person's partition,
in order); the format is `schemas/input.schema.json`.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer
from pydantic import TypeAdapter

from schemas.inputs import Envelope, Identify, Input, Track
from schemas.wire import encode_input

INPUT_SCHEMA_PATH = Path(__file__).resolve().parent.parent / "schemas" / "input.schema.json"


class NudgeProducer:
    """Produces identify and track inputs (or any input) to the input topic, acks from all replicas."""

    def __init__(self, bootstrap: str, topic: str = "nudge-input") -> None:
        self._topic = topic
        self._producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap, acks="all", enable_idempotence=True
        )

    async def start(self) -> None:
        """Connect to Kafka."""
        await self._producer.start()

    async def stop(self) -> None:
        """Flush and disconnect."""
        await self._producer.stop()

    async def __aenter__(self) -> NudgeProducer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def send(self, item: Input) -> None:
        """Produce one input, keyed by its person; returns when Kafka has acknowledged it."""
        await self._producer.send_and_wait(
            self._topic, value=encode_input(item), key=item.person.encode()
        )

    async def identify(self, person: str, at: float | None = None, **attributes: Any) -> None:
        """Create or update `person` with `attributes`."""
        await self.send(Identify(person=person, at=time.time() if at is None else at, attributes=attributes))

    async def track(
        self,
        person: str,
        name: str,
        at: float | None = None,
        event_id: str | None = None,
        **data: Any,
    ) -> None:
        """Record the event `name` with `data` for `person` (`event_id` deduplicates)."""
        await self.send(
            Track(
                person=person,
                at=time.time() if at is None else at,
                name=name,
                data=data,
                event_id=event_id,
            )
        )


def input_json_schema() -> dict[str, Any]:
    """The JSON Schema of one input-topic message: one input, or an envelope of inputs."""
    single = TypeAdapter(Input).json_schema(ref_template="#/$defs/{model}")
    envelope = TypeAdapter(Envelope).json_schema(ref_template="#/$defs/{model}")
    defs = {**single.pop("$defs", {}), **envelope.pop("$defs", {})}
    defs["Input"] = single
    defs["Envelope"] = envelope
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://nudge.dev/schemas/input.schema.json",
        "title": "Nudge input-topic message",
        "description": (
            "The value of one Kafka message on <app_id>-input, keyed by the person id: "
            "one input, or an envelope of inputs whose people share a partition."
        ),
        "oneOf": [{"$ref": "#/$defs/Input"}, {"$ref": "#/$defs/Envelope"}],
        "$defs": defs,
    }


def write_input_schema(path: Path = INPUT_SCHEMA_PATH) -> None:
    """Regenerate `schemas/input.schema.json` from the pydantic models."""
    path.write_text(json.dumps(input_json_schema(), indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    write_input_schema()
    print(f"wrote {INPUT_SCHEMA_PATH}")
