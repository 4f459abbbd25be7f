"""Start a scan from outside a worker (CLI, HTTP): record it, then publish one start per partition."""

from __future__ import annotations

import asyncpg
from aiokafka import AIOKafkaProducer

from agents.broadcast.store import create_scan
from schemas.broadcasts import ScanStart


def scans_topic(app_id: str) -> str:
    """The scans topic's name; it has the input topic's partition count."""
    return f"{app_id}-broadcasts"


async def start_scan(pool: asyncpg.Pool, bootstrap: str, topic: str, starts: list[ScanStart]) -> None:
    """Record the scan in PostgreSQL, then send each partition its start (acknowledged by Kafka)."""
    await create_scan(pool, starts)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for start in starts:
            await producer.send_and_wait(
                topic, start.model_dump_json().encode(), key=start.id.encode(), partition=start.partition
            )
    finally:
        await producer.stop()
