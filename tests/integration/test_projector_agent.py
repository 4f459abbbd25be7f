"""The projector agent in a running worker: its Kafka offsets move only once PostgreSQL holds
the rows, a worker killed meanwhile loses nothing, and a poison input is dead-lettered while
the people around it reach the read model."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from aiokafka import AIOKafkaConsumer

from deploy.local.runner import NudgeProcesses, caught_up
from schemas.inputs import Identify
from streams.database import connect
from streams.http.publisher import InputPublisher
from streams.kafka_offsets import committed_offsets, end_offsets
from streams.settings import Settings

pytestmark = pytest.mark.integration


async def identify(settings: Settings, people: list[str], **attributes: str) -> None:
    publisher = InputPublisher(settings.kafka_bootstrap, settings.input_topic, settings.partitions)
    await publisher.start()
    try:
        now = time.time()
        await publisher.publish([
            Identify(person=p, at=now, attributes={"email": f"{p}@x.io", **attributes}) for p in people
        ])
    finally:
        await publisher.stop()


async def dead_letters(settings: Settings) -> list[dict]:
    consumer = AIOKafkaConsumer(
        settings.dead_letter_topic, bootstrap_servers=settings.kafka_bootstrap,
        auto_offset_reset="earliest", enable_auto_commit=False,
    )
    await consumer.start()
    try:
        batches = await consumer.getmany(timeout_ms=3000)
        return [json.loads(r.value) for records in batches.values() for r in records]
    finally:
        await consumer.stop()


async def eventually(check, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.3)


def caught_up_on_projections(settings: Settings):
    return lambda: caught_up(settings, settings.projections_topic)


async def test_offsets_move_only_after_postgresql_has_the_rows_and_a_kill_meanwhile_loses_nothing(start_nudge):
    nudge: NudgeProcesses = start_nudge({"campaigns/README.md": "no campaigns\n"}, api=False)
    settings = nudge.settings
    db = await connect(settings.database_url, settings.app_id)
    try:
        async def people() -> int:
            return await db.fetchval("SELECT count(*) FROM people")

        await identify(settings, [f"p{i:02d}" for i in range(20)])
        await eventually(lambda: _equals(people, 20), 60, "the first 20 people")
        await eventually(caught_up_on_projections(settings), 30, "the projector to commit its offsets")
        before = await committed_offsets(settings.kafka_bootstrap, settings.app_id, settings.projections_topic)

        # PostgreSQL stops taking rows: the projector's transaction waits on the lock.
        lock = await connect(settings.database_url, settings.app_id)
        held = lock.transaction()
        await held.start()
        await lock.execute("LOCK TABLE people IN ACCESS EXCLUSIVE MODE")
        projected = await end_offsets(settings.kafka_bootstrap, settings.projections_topic)
        await identify(settings, [f"p{i:02d}" for i in range(20, 30)])
        await identify(settings, ["poison"], first_name="a\u0000b")
        await identify(settings, [f"p{i:02d}" for i in range(30, 40)])

        async def published() -> bool:
            ends = await end_offsets(settings.kafka_bootstrap, settings.projections_topic)
            return sum(ends.values()) >= sum(projected.values()) + 3
        await eventually(published, 60, "the person agent to project the new people")
        await asyncio.sleep(3.0)  # six commit intervals
        assert await committed_offsets(settings.kafka_bootstrap, settings.app_id, settings.projections_topic) == before

        await asyncio.to_thread(nudge.kill_worker)
        await asyncio.to_thread(nudge.start_worker)
        await held.rollback()
        await lock.close()

        await eventually(lambda: _equals(people, 40), 60, "all 40 valid people")
        await eventually(caught_up_on_projections(settings), 30, "the projector to commit its offsets")
        assert await db.fetchval("SELECT count(*) FROM people WHERE person = 'poison'") == 0
        # Replayed after the kill, yet one activity line per identify.
        assert await db.fetchval("SELECT count(*) FROM activity WHERE person <> 'poison'") == 40
    finally:
        await db.close()
    letters = [d for d in await dead_letters(settings) if d["source_topic"] == settings.projections_topic]
    assert letters and all('"poison"' in d["value"] for d in letters)
    assert all(d["reason"].startswith("PostgreSQL refused it") for d in letters)


async def _equals(read, expected: int) -> bool:
    return await read() == expected

