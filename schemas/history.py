"""A person's event history: per-name aggregates plus a bounded list of recent events.

Conditions (`count`, `within`, `since: entry`, `where`) and the template helpers
(`performed`, `event_count`, `total`, `last_event`) both read this shape.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class EventRecord(BaseModel):
    """One event as the person performed it, properties kept."""

    model_config = ConfigDict(frozen=True)

    name: str
    at: float
    data: dict[str, Any] = Field(default_factory=dict)
    type: str = "event"
    event_id: str | None = None


class EventAggregate(BaseModel):
    """Lifetime figures for one event name; kept even when old events leave `recent`."""

    count: int = 0
    first_at: float | None = None
    last_at: float | None = None


class History(BaseModel):
    """Aggregates per event name and the most recent events, oldest first."""

    aggregates: dict[str, EventAggregate] = Field(default_factory=dict)
    recent: list[EventRecord] = Field(default_factory=list)
