"""The projector agent: writes the person agent's read-model commands to PostgreSQL.

Journey events (metrics) have their own primary key (journey, event), so a replay inserts
nothing new; activity lines, person snapshots and the event catalog go through
`agents.projector.store`, one transaction per batch.
"""

from __future__ import annotations

from typing import Any

from agents.projector.store import write_batch
from agents.sender import outbox
from schemas.commands import Activity, JourneyEvent, PersonSnapshot
from schemas.wire import decode_commands
from streams.app import Runtime
from streams.database import get_pool


def register(rt: Runtime) -> None:
    """Attach the projector agent to the app."""
    app, settings, projections_topic = rt.app, rt.settings, rt.projections_topic

    @app.agent(projections_topic)
    async def projector_agent(stream: Any) -> None:
        """Record each batch: journey events, then activity and snapshots in their order."""
        async for batch in stream.take(1000, within=0.05):
            commands = [c for raw in batch for c in decode_commands(raw)]
            pool = await get_pool(settings)
            events = [c for c in commands if isinstance(c, JourneyEvent)]
            if events:
                await outbox.record_journey_events(pool, events)
            read_models = [c for c in commands if isinstance(c, (Activity, PersonSnapshot))]
            if read_models:
                await write_batch(pool, read_models)
