"""Processing: inputs/s through the person agent with the bench campaigns active.

A worker is started and warmed up (every partition committed once), then the workload is
produced straight to the input topic, and the clock runs until the consumer group's committed
offsets reach the end. Run once per message shape (envelopes of N inputs, single inputs).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import workload
from bench.harness import Deployment, cpu_seconds, produce, rate, rss_bytes


def measure(root: Path, smtp_url: str, people: int, events: int, envelope: int, workers: int = 1,
            worker_module: str | None = None, label: str = "proc",
            on_load: Callable[[list[int]], None] | None = None) -> dict[str, Any]:
    """One processing run: `events` inputs over `people`, in envelopes of `envelope`, on `workers`."""
    deployment = Deployment(root, label, smtp_url, worker_module=worker_module)
    try:
        for _ in range(workers):
            deployment.start_worker()
        asyncio.run(deployment.warm_up())
        if workers > 1:  # let a late rebalance settle, then prove every partition flows again
            time.sleep(3)
            asyncio.run(deployment.warm_up())
        messages = workload.envelopes(workload.inputs(people, events, time.time()), envelope)
        pids = [w.worker.pid for w in deployment.workers if w.worker is not None]
        cpu_before = sum(cpu_seconds(pid) for pid in pids)
        if on_load is not None:  # e.g. attach a profiler to the workers
            on_load(pids)

        async def run() -> tuple[float, float, float]:
            started = time.monotonic()
            produce_seconds = await produce(deployment.input_topic, messages)
            done = await deployment.wait_input_done(timeout=max(120.0, events / 200))
            return started, produce_seconds, done

        started, produce_seconds, done = asyncio.run(run())
        seconds = done - started
        cpu = sum(cpu_seconds(pid) for pid in pids) - cpu_before
        rss = max(rss_bytes(pid)[0] for pid in pids)
        return {
            "inputs": events, "people": people, "envelope_inputs": envelope, "workers": workers,
            "kafka_messages": len(messages),
            "mean_message_bytes": round(sum(len(v) for _, v, _ in messages) / len(messages)),
            "seconds": round(seconds, 2), "produce_seconds": round(produce_seconds, 2),
            "inputs_per_s": rate(events, seconds), "messages_per_s": rate(len(messages), seconds),
            "worker_cpu_seconds": round(cpu, 2),
            "cpu_us_per_input": round(cpu / events * 1e6, 1),
            "cpu_us_per_message": round(cpu / len(messages) * 1e6, 1),
            "worker_rss_mib": round(rss / 2**20, 1),
            "note": "committed offsets are polled every 0.1 s and committed every 0.5 s",
        }
    finally:
        deployment.stop()


def run(ctx: Any) -> dict[str, Any]:
    """Envelopes and single inputs, with the ratio of each to the raw consume ceiling."""
    results: dict[str, Any] = {}
    for size in ctx.envelope_sizes:
        key = "single" if size == 1 else f"envelope_{size}"
        events = ctx.events if size > 1 else max(1000, ctx.events // ctx.single_divisor)
        results[key] = measure(ctx.root, ctx.smtp.url, ctx.people, events, size,
                               worker_module=ctx.worker_module)
        ctx.log(f"processing {key}: {results[key]['inputs_per_s']} inputs/s, "
                f"{results[key]['cpu_us_per_input']} µs CPU/input")
    ceiling = ctx.results.get("ceiling", {})
    for key, result in results.items():
        raw = ceiling.get(key, {}).get("consume", {}).get("inputs_per_s")
        if raw:
            result["ratio_to_raw_consume"] = round(result["inputs_per_s"] / raw, 4)
        decoded = ceiling.get(key, {}).get("consume_decode", {}).get("inputs_per_s")
        if decoded:
            result["ratio_to_consume_and_decode"] = round(result["inputs_per_s"] / decoded, 4)
    return results
