"""Producing to Kafka directly: valid inputs are applied, garbage is parked with its reason."""

from __future__ import annotations

import asyncio
import time

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from deploy.local.runner import wait_for
from streams.producer import NudgeProducer

pytestmark = pytest.mark.integration

WELCOME = """\
id: welcome
trigger: {event: signed_up}
steps:
  - send: welcome
"""
WELCOME_TEMPLATE = """\
---
subject: "Welcome, {{ customer.first_name }}!"
---
<p>Your {{ event.plan }} account is ready.</p>
"""


@pytest.fixture
def nudge(start_nudge):
    return start_nudge(
        {"campaigns/welcome.yaml": WELCOME, "templates/welcome.html": WELCOME_TEMPLATE}, api=False
    )


def dead_letters(bootstrap: str, topic: str, timeout: float = 30) -> list[dict]:
    """Everything on the dead-letter topic, once at least one record is there."""

    async def consume() -> list[dict]:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        await consumer.start()
        try:
            partition = TopicPartition(topic, 0)
            consumer.assign([partition])
            await consumer.seek_to_beginning(partition)
            found: list[dict] = []
            deadline = time.monotonic() + timeout
            while not found and time.monotonic() < deadline:
                for records in (await consumer.getmany(timeout_ms=300)).values():
                    found.extend(orjson.loads(r.value) for r in records)
            return found
        finally:
            await consumer.stop()

    return asyncio.run(consume())


def test_a_garbage_message_is_dead_lettered_and_a_valid_one_still_applies(nudge, inbox):
    bootstrap, app_id = nudge.env["NUDGE_KAFKA_BOOTSTRAP"], nudge.env["NUDGE_APP_ID"]

    async def produce() -> None:
        raw = AIOKafkaProducer(bootstrap_servers=bootstrap)
        await raw.start()
        try:
            await raw.send_and_wait(f"{app_id}-input", key=b"ana", value=b'{"kind": "identify", "oops": true')
        finally:
            await raw.stop()
        async with NudgeProducer(bootstrap, f"{app_id}-input") as producer:
            await producer.identify("ana", email="ana@example.com", first_name="Ana")
            await producer.track("ana", "signed_up", plan="trial")

    asyncio.run(produce())

    wait_for(lambda: inbox.received, 60, what="the welcome email of the valid inputs")
    assert inbox.received[0].message["Subject"] == "Welcome, Ana!"
    [parked] = dead_letters(bootstrap, f"{app_id}-dead-letter")
    assert parked["reason"].startswith("invalid input: not JSON")
    assert parked["value"] == '{"kind": "identify", "oops": true'
    assert nudge.running() == ["worker"]


def test_a_message_that_breaks_the_schema_is_dead_lettered_with_the_field(nudge):
    bootstrap, app_id = nudge.env["NUDGE_KAFKA_BOOTSTRAP"], nudge.env["NUDGE_APP_ID"]

    async def produce() -> None:
        raw = AIOKafkaProducer(bootstrap_servers=bootstrap)
        await raw.start()
        try:
            bad = orjson.dumps({"kind": "track", "person": "bo", "at": 1.0})
            await raw.send_and_wait(f"{app_id}-input", key=b"bo", value=bad)
        finally:
            await raw.stop()

    asyncio.run(produce())
    [parked] = dead_letters(bootstrap, f"{app_id}-dead-letter")
    assert "track.name: Field required" in parked["reason"]
    assert nudge.running() == ["worker"]


def test_inputs_from_a_transactional_producer_apply_across_its_transaction_markers(nudge, inbox):
    bootstrap, app_id = nudge.env["NUDGE_KAFKA_BOOTSTRAP"], nudge.env["NUDGE_APP_ID"]
    identify = orjson.dumps({"kind": "identify", "person": "tx-ana", "at": time.time(),
                             "attributes": {"email": "tx-ana@example.com", "first_name": "Tx"}})
    signed_up = orjson.dumps({"kind": "track", "person": "tx-ana", "at": time.time(), "name": "signed_up",
                              "data": {"plan": "trial"}})

    async def produce() -> None:
        # Each commit writes a marker on the partition: an offset no consumer ever receives.
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, transactional_id=f"{app_id}-tx-test")
        await producer.start()
        try:
            for value in (identify, signed_up):
                async with producer.transaction():
                    await producer.send(f"{app_id}-input", key=b"tx-ana", value=value)
        finally:
            await producer.stop()

    asyncio.run(produce())

    wait_for(lambda: inbox.received, 60, what="the welcome email of the transactional inputs")
    assert inbox.received[0].message["Subject"] == "Welcome, Tx!"
    assert nudge.running() == ["worker"]
