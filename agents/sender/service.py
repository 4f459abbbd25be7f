"""Delivery in one process: named loops over one SMTP pool, woken by the outbox's NOTIFY.

Runs inside a worker (`NUDGE_DELIVERY_LOOPS` loops, from the sender's Faust shell) or on its
own (`nudge deliver`), so delivery scales apart from the stream processing. Templates are
reloaded when their files change; outcomes go back to the people's partitions in envelopes,
permanent failures to the dead-letter topic.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator

import asyncpg
from aiokafka import AIOKafkaProducer

from agents.render.errors import TemplateFileError
from agents.render.layouts import LAYOUTS_FOLDER
from agents.render.template_files import load_templates
from agents.sender import loop_names, outbox
from agents.sender.dead_letter import DeadLetter
from agents.sender.delivery import DeliveryLoop
from agents.sender.policy import BroadcastRates
from agents.sender.smtp import SmtpPool
from schemas.inputs import Delivery, Input
from streams.database import DatabaseUnavailable, get_pool
from streams.file_watch import Fingerprint, fingerprint
from streams.http.publisher import InputPublisher
from streams.retry import retry
from streams.settings import Settings

log = logging.getLogger(__name__)

_RELOAD_SECONDS = 2.0
_LISTEN_CHECK_SECONDS = 5.0


class KafkaOutlets:
    """Where delivery reports: outcomes to the input topic, failures to the dead-letter topic."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._inputs = InputPublisher(settings.kafka_bootstrap, settings.input_topic, settings.partitions)
        self._producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")

    async def start(self) -> None:
        """Connect to Kafka."""
        await self._inputs.start()
        await self._producer.start()

    async def stop(self) -> None:
        """Flush and disconnect."""
        await self._inputs.stop()
        await self._producer.stop()

    async def publish_outcomes(self, outcomes: list[Delivery]) -> None:
        """Feed outcomes back to the people's partitions (one envelope per partition)."""
        await self._inputs.publish(list[Input](outcomes))

    async def publish_dead_letter(self, letter: DeadLetter) -> None:
        """Park a message that failed for good, with its reason."""
        await self._producer.send_and_wait(
            self.settings.dead_letter_topic, letter.model_dump_json().encode(),
            key=letter.message_id.encode(),
        )


@contextlib.asynccontextmanager
async def _listening(pool: asyncpg.Pool, wake: asyncio.Event) -> AsyncIterator[None]:
    """Set `wake` whenever rows are queued (LISTEN), re-listening after a lost connection."""

    def notified(*_: object) -> None:
        wake.set()

    async def keep_listening() -> None:
        while True:
            try:
                async with pool.acquire() as conn:
                    channel = await outbox.outbox_channel(conn)
                    await conn.add_listener(channel, notified)
                    try:
                        # Rows queued while we were not listening: look now.
                        wake.set()
                        while not conn.is_closed():  # noqa: ASYNC110 - asyncpg has no close event to await
                            await asyncio.sleep(_LISTEN_CHECK_SECONDS)
                    finally:
                        if not conn.is_closed():
                            await conn.remove_listener(channel, notified)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("outbox notifications lost, listening again: %s", exc)
                await asyncio.sleep(_LISTEN_CHECK_SECONDS)

    task = asyncio.create_task(keep_listening())
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def _reload_templates(settings: Settings, loops: list[DeliveryLoop]) -> None:
    """Pick up edited, added and removed templates; a broken edit keeps the last good set."""
    folders = [settings.templates_dir, settings.templates_dir / LAYOUTS_FOLDER]
    seen: Fingerprint = fingerprint(folders, "*.*")
    while True:
        await asyncio.sleep(_RELOAD_SECONDS)
        now_seen = fingerprint(folders, "*.*")
        if now_seen == seen:
            continue
        seen = now_seen
        try:
            templates = load_templates(settings.templates_dir)
        except TemplateFileError as exc:
            log.error("templates not reloaded, the last good set stays in use: %s", exc)
            continue
        for loop in loops:
            loop.templates = templates
        log.info("templates reloaded: %d", len(templates))


async def run_delivery(settings: Settings, loops: int) -> None:
    """Run `loops` named delivery loops until cancelled, then stop them cleanly."""
    pool = await retry(lambda: get_pool(settings), "delivery waits for PostgreSQL", on=DatabaseUnavailable,
                       first=_LISTEN_CHECK_SECONDS, cap=_LISTEN_CHECK_SECONDS, log=log)
    outlets = KafkaOutlets(settings)
    await outlets.start()
    smtp = SmtpPool(
        settings.smtp, size=settings.smtp_connections, rate_per_second=settings.smtp_rate_per_second,
        probe_every=settings.smtp_probe_seconds,
    )
    me = loop_names.Me()
    names = await loop_names.take_names(
        pool, settings.delivery_name or me.host, loops, me, time.time(),
        settings.delivery_lease_seconds,
    )
    wake = asyncio.Event()
    rates = BroadcastRates()
    templates = load_templates(settings.templates_dir)

    def heartbeat(name: str):
        return lambda: loop_names.heartbeat(pool, name, me, time.time())

    delivery = [
        DeliveryLoop(
            pool, smtp, templates, settings, outlets.publish_outcomes, name=name,
            wake_event=wake, publish_dead_letter=outlets.publish_dead_letter, rates=rates,
            heartbeat=heartbeat(name),
        )
        for name in names
    ]
    log.info("delivery loops %s started (%d SMTP connections)", ", ".join(names), smtp.size)
    try:
        async with _listening(pool, wake):
            await asyncio.gather(_reload_templates(settings, delivery), *(loop.run() for loop in delivery))
    finally:
        with contextlib.suppress(Exception):
            await loop_names.give_up(pool, names, me)
        await smtp.close()
        await outlets.stop()
