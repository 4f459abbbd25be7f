"""The sender agent and the worker's delivery loops: the Faust shell of the delivery side.

The agent only stores send commands in the PostgreSQL outbox (a replayed command hits the
primary key and does nothing) and acknowledges a batch's Kafka messages after the rows are in;
delivery (agents/sender/service.py) renders and talks SMTP apart from any consuming loop.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import orjson

from agents.sender import webhooks
from agents.sender.dead_letter import DeadLetter
from agents.sender.intake import store_sends
from agents.sender.service import run_delivery
from schemas.commands import CallWebhook, SendEmail
from schemas.wire import decode_commands
from streams.app import Runtime
from streams.database import get_pool

log = logging.getLogger(__name__)

# Kafka messages per batch (each holds up to a few hundred commands).
_TAKE = 500
_WITHIN = 0.01


def register(rt: Runtime) -> None:
    """Attach the sender agent and, with NUDGE_DELIVERY_LOOPS > 0, the delivery loops."""
    app, settings = rt.app, rt.settings

    @app.agent(rt.sends_topic)
    async def sender_agent(stream: Any) -> None:
        """Store each batch of send commands in the outbox, then acknowledge it; start webhooks."""
        async for events in stream.noack_take(_TAKE, within=_WITHIN):
            emails: list[SendEmail] = []
            for event in events:
                try:
                    commands = decode_commands(event.value)
                except ValueError as exc:
                    await poison(event.key, event.value, f"invalid send command: {exc}")
                    continue
                for command in commands:
                    if isinstance(command, SendEmail):
                        emails.append(command)
                    elif isinstance(command, CallWebhook):
                        webhooks.start_call(command)
            refused = await store_sends(lambda: get_pool(settings), emails)
            for command, reason in refused:
                letter = DeadLetter(message_id=command.message_id, code=0, reason=reason,
                                    attempts=0, command=command)
                await rt.dead_letter_topic.send(
                    key=command.message_id.encode(), value=letter.model_dump_json().encode()
                )
            # Only now may Faust commit these offsets: the rows are in PostgreSQL.
            for event in events:
                await stream.ack(event)

    async def poison(key: bytes | None, value: bytes | None, reason: str) -> None:
        """Park a message of the sends topic Nudge cannot read, with its reason."""
        log.warning("dead-lettered send command: %s", reason)
        await rt.dead_letter_topic.send(key=key, value=orjson.dumps({
            "reason": reason,
            "source_topic": settings.sends_topic,
            "value": (value or b"").decode("utf-8", "replace"),
            "at": time.time(),
        }))

    if settings.delivery_loops > 0:

        @app.task
        async def deliver() -> None:
            """Run this worker's delivery loops until it stops."""
            await run_delivery(settings, settings.delivery_loops)
