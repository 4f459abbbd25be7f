"""Start a scan from outside a worker (CLI, HTTP): record it, then publish one start per partition."""

from __future__ import annotations

import asyncpg
from aiokafka import AIOKafkaProducer

from agents.broadcast.store import create_scan
from schemas.broadcasts import ScanStart
from streams.settings import Settings


async def start_scan(pool: asyncpg.Pool, settings: Settings, starts: list[ScanStart]) -> None:
    """Record the scan in PostgreSQL, then send each partition its start on the broadcasts
    topic (acknowledged by Kafka)."""
    await create_scan(pool, starts)
    topic = settings.broadcasts_topic
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for start in starts:
            await producer.send_and_wait(
                topic, start.model_dump_json().encode(), key=start.id.encode(), partition=start.partition
            )
    finally:
        await producer.stop()
