"""Ingest: events/s through the HTTP API into the input topic, and the envelopes it actually writes.

Drives an API process of its own with `bench/ingest.py`'s aiohttp client: the Track API (one
event a request, which the publisher groups into one envelope per partition per flush) and
Segment's `/v1/batch` (100 events a request). Then reads the topic back to say how many inputs
an envelope carried and how big it was: the message shape the ceiling and processing use.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import orjson

from bench.harness import Deployment, read_topic
from bench.ingest import WRITE_KEY, basic, drive


def envelope_stats(values: list[bytes]) -> dict[str, float]:
    """Messages, inputs, inputs per message and bytes per message of what the API wrote."""
    inputs = sum(len(orjson.loads(v).get("inputs", [None])) for v in values)
    return {"messages": len(values), "inputs": inputs,
            "inputs_per_message": round(inputs / max(1, len(values)), 2),
            "mean_message_bytes": round(sum(map(len, values)) / max(1, len(values)))}


def run(ctx: Any) -> dict[str, Any]:
    seconds, concurrency, batch_size = 10.0, 32, 100
    results: dict[str, Any] = {}
    for mode in ("single", "batch"):
        deployment = Deployment(ctx.root, "ing", ctx.smtp.url,
                                extra_env={"NUDGE_SEGMENT_WRITE_KEY": WRITE_KEY})
        try:
            api = deployment.start_api()
            track_auth = {**basic(api.env["NUDGE_SITE_ID"], api.env["NUDGE_API_KEY"]),
                          "Content-Type": "application/json"}
            batch_auth = {**basic(WRITE_KEY, ""), "Content-Type": "application/json"}

            def single(worker: int, n: int) -> tuple[str, str, str, dict[str, str]]:
                body = json.dumps({"name": "viewed_product", "id": f"{worker}-{n}",
                                   "data": {"product_id": f"p{n % 50}", "category": "shoes"}})
                return "POST", f"/api/v1/customers/u{(worker * 7919 + n) % 20000:07d}/events", body, track_auth

            def batch(worker: int, n: int) -> tuple[str, str, str, dict[str, str]]:
                messages = [{"type": "track", "userId": f"u{(worker * 7919 + n * batch_size + i) % 20000:07d}",
                             "event": "viewed_product", "messageId": f"{worker}-{n}-{i}",
                             "properties": {"product_id": f"p{i % 50}"}} for i in range(batch_size)]
                return "POST", "/v1/batch", json.dumps({"batch": messages}), batch_auth

            events_per_s, failures = asyncio.run(drive(
                api.base_url, seconds, concurrency, single if mode == "single" else batch,
                1 if mode == "single" else batch_size))
            stats = envelope_stats(asyncio.run(read_topic(deployment.input_topic)))
            results[mode] = {"events_per_s": round(events_per_s, 1), "failed_requests": failures,
                             "seconds": seconds, "concurrency": concurrency,
                             "events_per_request": 1 if mode == "single" else batch_size,
                             "written": stats}
            ctx.log(f"ingest {mode}: {events_per_s:.0f} events/s, "
                    f"{stats['inputs_per_message']} inputs per Kafka message")
        finally:
            deployment.stop()
    return results
