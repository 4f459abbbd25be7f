"""State: bytes per person in RocksDB and the worker's resident memory, holding N people.

N people are identified and act once each (two inputs a person, envelopes of 100) on one
worker; then the worker's data dir is measured and its RSS read from /proc. The deployment is
left running for the recovery section when that section runs too.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from bench import workload
from bench.harness import Deployment, dir_bytes, produce, rss_bytes


def build(ctx: Any, people: int) -> tuple[Deployment, dict[str, Any]]:
    """A one-worker deployment holding `people` people; and how long loading them took."""
    deployment = Deployment(ctx.root, "st", ctx.smtp.url, extra_env={"NUDGE_SMTP_RATE_PER_SECOND": "1"},
                            worker_module=ctx.worker_module)
    worker = deployment.start_worker()
    asyncio.run(deployment.warm_up())
    baseline_rss = rss_bytes(worker.worker.pid)[0]
    inputs = 0
    started = time.monotonic()
    chunk = 100_000  # bounded memory: build and produce the population in slices
    for first in range(0, people, chunk):
        size = min(chunk, people - first)
        items = list(workload.population(size, time.time(), prefix=f"s{first // chunk:02d}_"))
        inputs += len(items)
        asyncio.run(produce(deployment.input_topic, workload.envelopes(iter(items), 100)))
    asyncio.run(deployment.wait_input_done(timeout=max(300.0, people / 100)))
    seconds = time.monotonic() - started
    return deployment, {"people": people, "inputs": inputs, "load_seconds": round(seconds, 1),
                        "load_inputs_per_s": round(inputs / seconds, 1),
                        "baseline_rss_mib": round(baseline_rss / 2**20, 1)}


def run(ctx: Any) -> dict[str, Any]:
    deployment, result = build(ctx, ctx.state_people)
    time.sleep(2)  # let RocksDB flush its memtables and Python settle after the load
    pid = deployment.workers[0].worker.pid
    rss, peak = rss_bytes(pid)
    data = dir_bytes(deployment.data_dir())
    result.update(
        data_dir_bytes=data, bytes_per_person=round(data / ctx.state_people, 1),
        worker_rss_mib=round(rss / 2**20, 1), worker_peak_rss_mib=round(peak / 2**20, 1),
        rss_bytes_per_person=round((rss - result["baseline_rss_mib"] * 2**20) / ctx.state_people, 1),
    )
    if ctx.state_people < 1_000_000:  # the idle worker's RSS, plus the measured cost per person
        result["rss_at_1m_mib_extrapolated"] = round(
            result["baseline_rss_mib"] + result["rss_bytes_per_person"] * 1_000_000 / 2**20, 1)
    ctx.log(f"state: {ctx.state_people} people, {result['bytes_per_person']} B/person on disk, "
            f"RSS {result['worker_rss_mib']} MiB")
    ctx.held = deployment  # recovery kills this worker
    return result
