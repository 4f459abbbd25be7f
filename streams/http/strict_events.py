"""Strict events at the HTTP edge: a request whose tracked event breaks `events.yaml` is refused.

The schema itself (its file, parsing and checks) is `agents/check/event_schema.py`.
"""

from __future__ import annotations

from collections.abc import Callable

from agents.check.event_schema import EventRefused, EventSchema, check_event
from schemas.inputs import Input, Track
from streams.http.errors import ApiError
from streams.http.publisher import Publish


def strict_publish(publish: Publish, schema: Callable[[], EventSchema]) -> Publish:
    """`publish`, refusing (400) the whole request when one of its tracked events breaks the schema."""

    async def checked(inputs: list[Input]) -> None:
        current = schema()
        for item in inputs:
            if isinstance(item, Track) and item.type == "event":
                try:
                    check_event(current, item.name, item.data)
                except EventRefused as exc:
                    raise ApiError(400, str(exc)) from exc
        await publish(inputs)

    return checked
