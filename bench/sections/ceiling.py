"""Ceiling: raw aiokafka produce and consume on the same broker, with the messages Nudge carries.

The messages are the processing section's own (the workload as single inputs, and as envelopes
of each size). Consumption assigns every partition and seeks to the start (no group join to time);
envelopes are repeated until there are at least 5,000 of them, so the timing is not one fetch; `consume_decode` also parses every message into
inputs (`schemas.wire.decode_inputs`): the least a Python consumer must do per input.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from bench import workload
from bench.harness import BOOTSTRAP, produce, rate
from schemas.wire import decode_inputs
from streams.http.publisher import ensure_topic


async def consume(topic: str, expected: int, decode: bool) -> tuple[float, int]:
    """Read `expected` messages from the start of every partition; return (seconds, inputs)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=BOOTSTRAP, enable_auto_commit=False,
        auto_offset_reset="earliest", max_partition_fetch_bytes=8 * 1024 * 1024,
    )
    await consumer.start()
    seen = inputs = 0
    try:
        partitions = [TopicPartition(topic, p) for p in range(workload.PARTITIONS)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        started = time.monotonic()
        deadline = started + 300
        while seen < expected and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=1000, max_records=5000)
            for records in batch.values():
                for record in records:
                    inputs += len(decode_inputs(record.value)) if decode else 1
                seen += len(records)
        return time.monotonic() - started, inputs
    finally:
        await consumer.stop()


def measure(messages: list[workload.Message], inputs: int) -> dict[str, Any]:
    """Produce `messages` to a fresh 4-partition topic, then consume them twice."""
    topic = f"bench-ceiling-{uuid.uuid4().hex[:8]}"
    asyncio.run(ensure_topic(BOOTSTRAP, topic, workload.PARTITIONS))
    produce_seconds = asyncio.run(produce(topic, messages, acks="all"))
    consume_seconds, _ = asyncio.run(consume(topic, len(messages), decode=False))
    decode_seconds, decoded = asyncio.run(consume(topic, len(messages), decode=True))
    assert decoded == inputs, (decoded, inputs)
    size = sum(len(v) for _, v, _ in messages) / len(messages)
    mb = sum(len(v) for _, v, _ in messages) / 1e6

    def figures(seconds: float) -> dict[str, float]:
        return {"seconds": round(seconds, 3), "messages_per_s": rate(len(messages), seconds),
                "inputs_per_s": rate(inputs, seconds), "mb_per_s": rate(mb, seconds)}

    return {"messages": len(messages), "inputs": inputs, "mean_message_bytes": round(size),
            "produce": figures(produce_seconds), "consume": figures(consume_seconds),
            "consume_decode": figures(decode_seconds)}


def run(ctx: Any) -> dict[str, Any]:
    """One measure per message shape the processing section uses."""
    results: dict[str, Any] = {}
    for size in ctx.envelope_sizes:
        count = ctx.ceiling_inputs
        items = list(workload.inputs(ctx.people, count, time.time()))
        key = "single" if size == 1 else f"envelope_{size}"
        messages = workload.envelopes(iter(items), size)
        repeat = max(1, -(-5000 // len(messages)))
        results[key] = measure(messages * repeat, count * repeat)
        ctx.log(f"ceiling {key}: consume {results[key]['consume']['inputs_per_s']} inputs/s, "
                f"produce {results[key]['produce']['inputs_per_s']} inputs/s")
    return results
