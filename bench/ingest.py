"""Ingest throughput: events/s through the real API into Kafka, one event per request vs batches.

    .venv/bin/python bench/ingest.py [--seconds 10] [--concurrency 32] [--batch-size 100]

Starts the local stack if needed and an API process of its own (own app id, rate limit off),
then drives it with aiohttp: the Track API's `POST /api/v1/customers/{id}/events` (one event
a request) and Segment's `POST /v1/batch`. Every 200 means the events are acknowledged by Kafka.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from deploy.local import kafka, stack  # noqa: E402
from deploy.local.runner import NudgeProcesses, nudge_env  # noqa: E402

WRITE_KEY = "bench-write-key"


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


Request = tuple[str, str, str, dict[str, str]]  # method, path, body, headers


async def drive(
    base_url: str,
    seconds: float,
    concurrency: int,
    request_for: Callable[[int, int], Request],
    events_per_request: int,
) -> tuple[float, int]:
    """Send requests from `concurrency` workers for `seconds`; return (events/s, failures)."""
    sent = failures = 0
    deadline = time.monotonic() + seconds
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(base_url, connector=connector) as session:

        async def worker(index: int) -> None:
            nonlocal sent, failures
            n = 0
            while time.monotonic() < deadline:
                method, path, body, headers = request_for(index, n)
                n += 1
                async with session.request(method, path, data=body, headers=headers) as response:
                    await response.read()
                    if response.status == 200:
                        sent += events_per_request
                    else:
                        failures += 1

        started = time.monotonic()
        await asyncio.gather(*(worker(i) for i in range(concurrency)))
        elapsed = time.monotonic() - started
    return sent / elapsed, failures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=100)
    args = parser.parse_args()

    stack.up()
    root = Path(tempfile.mkdtemp(prefix="nudge-bench-"))
    env = nudge_env(
        app_id=f"bench{uuid.uuid4().hex[:8]}",
        database_url="postgresql://unused@127.0.0.1:1/unused",
        smtp_url="smtp://127.0.0.1:1",
        data_dir=root / "data",
        campaigns_dir=root,
        kafka_bootstrap=kafka.BOOTSTRAP,
    )
    env.update(NUDGE_SEGMENT_WRITE_KEY=WRITE_KEY, NUDGE_RATE_LIMIT_PER_SECOND="0")
    api = NudgeProcesses(env, root / "logs")
    api.start_api()
    track_auth = {**basic(env["NUDGE_SITE_ID"], env["NUDGE_API_KEY"]), "Content-Type": "application/json"}
    batch_auth = {**basic(WRITE_KEY, ""), "Content-Type": "application/json"}

    def single(worker: int, n: int) -> Request:
        body = json.dumps({"name": "viewed", "id": f"{worker}-{n}", "data": {"n": n}})
        return "POST", f"/api/v1/customers/p{(worker * 7919 + n) % 10000}/events", body, track_auth

    def batch(worker: int, n: int) -> Request:
        messages = [
            {"type": "track", "userId": f"p{(worker * 7919 + n * args.batch_size + i) % 10000}",
             "event": "viewed", "messageId": f"{worker}-{n}-{i}", "properties": {"n": n}}
            for i in range(args.batch_size)
        ]
        return "POST", "/v1/batch", json.dumps({"batch": messages}), batch_auth

    try:
        single_rate, single_failed = asyncio.run(drive(api.base_url, args.seconds, args.concurrency, single, 1))
        batch_rate, batch_failed = asyncio.run(
            drive(api.base_url, args.seconds, args.concurrency, batch, args.batch_size)
        )
    finally:
        api.stop()
    print(f"single events (Track API, 1 event/request):  {single_rate:10.0f} events/s  ({single_failed} failed requests)")
    print(f"batched events (/v1/batch, {args.batch_size}/request):     {batch_rate:10.0f} events/s  ({batch_failed} failed requests)")
    print(f"batch / single: {batch_rate / single_rate:.1f}x  (concurrency {args.concurrency}, {args.seconds:.0f}s each)")


if __name__ == "__main__":
    main()
