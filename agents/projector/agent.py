"""The projector agent: the Faust shell that writes read-model commands to PostgreSQL.

Its Kafka offsets move only after PostgreSQL holds the batch: the stream is read without
Faust's automatic acks (`noack_take`), and each message is acknowledged once
`project_messages` has written it, or once its refusal is on the dead-letter topic. A crash
anywhere before that replays the batch, which the idempotent writes make harmless.
"""

from __future__ import annotations

import logging
import time
from functools import partial
from typing import Any

from agents.projector.batches import project_messages, until_done
from agents.projector.plan import Refusal
from streams import metrics
from streams.app import Runtime
from streams.database import get_pool

log = logging.getLogger(__name__)

# Messages per transaction, and how long to wait for a batch to fill.
BATCH = 1000
WITHIN_SECONDS = 0.05


def register(rt: Runtime) -> None:
    """Attach the projector agent to the app."""
    settings, dead_letter_topic = rt.settings, rt.dead_letter_topic

    @rt.app.agent(rt.projections_topic)
    async def projector_agent(stream: Any) -> None:
        """Write each batch, dead-letter what PostgreSQL refuses, then acknowledge the batch."""
        async for events in stream.noack_take(BATCH, within=WITHIN_SECONDS):
            messages = [
                (f"{e.message.partition}:{e.message.offset}", e.value) for e in events
            ]
            outcome = await project_messages(lambda: get_pool(settings), messages)
            for kind, count in outcome.written.items():
                metrics.PROJECTED.labels(kind=kind).inc(count)
            for refusal in outcome.refusals:
                log.warning("projector: dead-lettered %s: %s", refusal.source, refusal.reason)
                await until_done(partial(park, refusal), "dead-lettering a refused command")
                metrics.DEAD_LETTERS.labels(stage="projector").inc()
            for event in events:
                await stream.ack(event)

    async def park(refusal: Refusal) -> None:
        """Put a refusal on the dead-letter topic and wait until the broker has it."""
        delivered = await dead_letter_topic.send(
            key=(refusal.person or "").encode() or None,
            value=refusal.letter(settings.projections_topic, time.time()),
        )
        await delivered
