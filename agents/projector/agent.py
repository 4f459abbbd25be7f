"""The projector agent: writes journey events to PostgreSQL, where metrics are counted.

Each journey event has its own primary key (journey, event), so a replay inserts nothing new.
"""

from __future__ import annotations

from typing import Any

from agents.sender import outbox
from schemas.commands import JourneyEvent
from schemas.wire import decode_command
from streams.app import app, projections_topic, settings
from streams.database import get_pool


@app.agent(projections_topic)
async def projector_agent(stream: Any) -> None:
    """Record each batch of journey events."""
    async for batch in stream.take(1000, within=0.05):
        events = [c for c in map(decode_command, batch) if isinstance(c, JourneyEvent)]
        if events:
            await outbox.record_journey_events(await get_pool(settings), events)
