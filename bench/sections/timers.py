"""Timers: how long until N timers that fall due at the same instant have all fired.

N people are identified with `bench_due_at` = one moment a little ahead (the `bench_timer`
campaign, `trigger: {date: {attribute: bench_due_at}}`, sends at that moment). From the due time
the clock runs until N more send commands are on the sends topic, and until the outbox holds N
`bench_timer` rows. Delivery is throttled to 1 email/s here so SMTP work does not share the CPU.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from bench import workload
from bench.harness import BOOTSTRAP, BenchError, Deployment, end_offsets, produce, rss_bytes
from schemas.wire import command_items
from streams.database import connect


async def outbox_count(deployment: Deployment) -> int:
    conn = await connect(deployment.database_url, deployment.app_id)
    try:
        return await conn.fetchval("SELECT count(*) FROM outbox WHERE template = 'bench_timer'")
    finally:
        await conn.close()


async def follow(deployment: Deployment, due: float, count: int, timeout: float) -> dict[str, Any]:
    """Read the sends topic and poll the outbox from `due` until both hold `count` timer sends.

    The agent batches the sends of one input message into one Kafka message, so the commands
    are counted, not the messages.
    """
    await asyncio.sleep(max(0.0, due - time.time() - 0.5))
    starts = await end_offsets(deployment.sends_topic)
    consumer = AIOKafkaConsumer(bootstrap_servers=BOOTSTRAP, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [TopicPartition(deployment.sends_topic, p) for p in starts]
        consumer.assign(partitions)
        for tp in partitions:
            consumer.seek(tp, starts[tp.partition])
        marks: dict[str, float] = {}
        series: list[tuple[float, int]] = []
        sent = 0
        deadline = time.time() + timeout
        while time.time() < deadline and "outbox_all" not in marks:
            batches = await consumer.getmany(timeout_ms=200)
            # Counted from the raw JSON: validating 100,000 sends here would take the CPU the
            # worker being measured needs.
            sent += sum(
                1
                for records in batches.values()
                for record in records
                for item in command_items(record.value)
                if item.get("kind") == "send_email" and item.get("template") == "bench_timer"
            )
            now = time.time()
            series.append((round(now - due, 2), sent))
            if sent > 0:
                marks.setdefault("first_send", now)
            if sent >= count:
                marks.setdefault("sends_all", now)
                if await outbox_count(deployment) >= count:
                    marks["outbox_all"] = time.time()
    finally:
        await consumer.stop()
    if "sends_all" not in marks:
        raise BenchError(f"only {series[-1][1]} of {count} timer sends within {timeout:.0f}s of due")
    return {name: round(at - due, 2) for name, at in marks.items()} | {"series": series[::5]}


def run(ctx: Any) -> dict[str, Any]:
    count = ctx.timers
    deployment = Deployment(ctx.root, "tim", ctx.smtp.url, extra_env={"NUDGE_SMTP_RATE_PER_SECOND": "1"},
                            worker_module=ctx.worker_module)
    try:
        worker = deployment.start_worker()
        asyncio.run(deployment.warm_up())
        # Far enough ahead that every identify is applied (and its timer armed) before it falls due.
        due = time.time() + 20 + count / 700
        messages = workload.envelopes(
            workload.population(count, time.time(), prefix="t", extra={"bench_due_at": due}, tracks_each=0), 100)
        asyncio.run(produce(deployment.input_topic, messages))
        armed = asyncio.run(deployment.wait_input_done(timeout=due - time.time() + 600))
        armed_before_due = round(due - time.time() - (time.monotonic() - armed), 1)
        ctx.log(f"timers: {count} armed {armed_before_due}s before due")
        result = asyncio.run(follow(deployment, due, count, timeout=600))
        rss = rss_bytes(worker.worker.pid)[0]
        result.update(timers=count, armed_before_due_s=armed_before_due, worker_rss_mib=round(rss / 2**20, 1),
                      fired_per_s=round(count / result["sends_all"], 1) if result["sends_all"] > 0 else None)
        ctx.log(f"timers: all {count} fired {result['sends_all']}s after due, outbox {result.get('outbox_all')}s")
        return result
    finally:
        deployment.stop()
