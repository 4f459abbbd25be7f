"""The sender agent and the delivery task: the Faust shell of the delivery side.

The agent only inserts send commands into the PostgreSQL outbox (a replayed command hits the
primary key and does nothing); the delivery loop, a separate task, renders and talks SMTP, so
slow I/O never runs inside a consuming loop.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from agents.render.errors import TemplateFileError
from agents.render.template_files import LAYOUTS_FOLDER, load_templates
from agents.sender import delivery, outbox, webhooks
from agents.sender.dead_letter import DeadLetter
from agents.sender.smtp import SmtpPool
from schemas.commands import CallWebhook, SendEmail
from schemas.inputs import Delivery
from schemas.wire import decode_commands, encode_input
from streams.app import Runtime
from streams.database import get_pool
from streams.file_watch import Fingerprint, fingerprint

log = logging.getLogger(__name__)

_delivery_wake = asyncio.Event()


def register(rt: Runtime) -> None:
    """Attach the sender agent, the delivery loop and the template reload to the app."""
    app, settings = rt.app, rt.settings
    dead_letter_topic, input_topic, sends_topic = rt.dead_letter_topic, rt.input_topic, rt.sends_topic

    @app.agent(sends_topic)
    async def sender_agent(stream: Any) -> None:
        """Insert each batch of send commands into the outbox; start webhook calls."""
        async for batch in stream.take(500, within=0.01):
            emails: list[SendEmail] = []
            for command in (c for raw in batch for c in decode_commands(raw)):
                if isinstance(command, SendEmail):
                    emails.append(command)
                elif isinstance(command, CallWebhook):
                    webhooks.start_call(command)
            if emails:
                pool = await get_pool(settings)
                await outbox.insert_sends(pool, emails)
                _delivery_wake.set()

    async def publish_outcome(outcome: Delivery) -> None:
        """Feed a delivery outcome back to the person's partition as an input."""
        await input_topic.send(key=outcome.person.encode(), value=encode_input(outcome))

    async def publish_dead_letter(letter: DeadLetter) -> None:
        """Park a message that failed for good, with its reason, on the dead-letter topic."""
        await dead_letter_topic.send(
            key=letter.message_id.encode(), value=letter.model_dump_json().encode()
        )


    # The running delivery loop (once started) and the templates folder as last loaded.
    running: dict[str, Any] = {"loop": None, "templates_seen": None}

    @app.task
    async def run_delivery() -> None:
        """Claim due outbox rows, render and send them, until the worker stops."""
        loop = running["loop"] = delivery.DeliveryLoop(
            await get_pool(settings),
            SmtpPool(
                settings.smtp,
                size=settings.smtp_connections,
                rate_per_second=settings.smtp_rate_per_second,
            ),
            load_templates(settings.templates_dir),
            settings,
            publish_outcome,
            wake_event=_delivery_wake,
            publish_dead_letter=publish_dead_letter,
            concurrency=settings.smtp_connections,
        )
        await loop.run()

    @app.timer(interval=2.0)
    async def reload_templates() -> None:
        """Pick up edited, added and removed templates; a broken edit keeps the last good set."""
        folders = [settings.templates_dir, settings.templates_dir / LAYOUTS_FOLDER]
        seen: Fingerprint = fingerprint(folders, "*.*")
        loop = running["loop"]
        if loop is None or seen == running["templates_seen"]:
            return
        first = running["templates_seen"] is None
        running["templates_seen"] = seen
        if first:
            return  # run_delivery just loaded them
        try:
            loop.templates = load_templates(settings.templates_dir)
            log.info("templates reloaded: %d", len(loop.templates))
        except TemplateFileError as exc:
            log.error("templates not reloaded, the last good set stays in use: %s", exc)
