"""Latency: event accepted (HTTP 200) → SMTP accepted, under background load and on an idle system.

An API and a worker run against the bench's in-process SMTP sink. Background clients send
`viewed_product` and page events (which start no immediate send) at a fixed rate through the
Track API; every 100 ms a probe person gets `bench_probe`, whose campaign sends at once. The
sink notes when each probe's mail arrives. Then, with the load stopped, 20 probes one by one.
"""

from __future__ import annotations

import asyncio
import base64
import statistics
import time
from typing import Any

import aiohttp

from bench.harness import Deployment, SmtpSink, wait_until


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (0..1) by nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))]


class Client:
    """Track API calls over one aiohttp session."""

    def __init__(self, session: aiohttp.ClientSession, site: str, key: str) -> None:
        self.session = session
        token = base64.b64encode(f"{site}:{key}".encode()).decode()
        self.headers = {"Authorization": f"Basic {token}", "Content-Type": "application/json"}

    async def call(self, method: str, path: str, body: dict[str, Any]) -> bool:
        async with self.session.request(method, path, json=body, headers=self.headers) as response:
            await response.read()
            return response.status == 200


async def identify_all(client: Client, people: list[str], concurrency: int = 32) -> None:
    """Create every probe person (with an email) before the clock starts."""
    queue = list(people)

    async def worker() -> None:
        while queue:
            person = queue.pop()
            await client.call("PUT", f"/api/v1/customers/{person}", {"email": f"{person}@probe.example"})

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def probe(client: Client, person: str, n: int, accepted: dict[str, float]) -> None:
    """One probe event; note when the API accepted it."""
    if await client.call("POST", f"/api/v1/customers/{person}/events", {"name": "bench_probe", "data": {"n": n}}):
        accepted[f"{person}@probe.example"] = time.time()


async def loaded(base_url: str, site: str, key: str, seconds: float, rate: float,
                 probes: list[str]) -> tuple[dict[str, float], dict[str, float]]:
    """Background events at `rate`/s for `seconds`, a probe every 0.1 s; return (accepted, load)."""
    accepted: dict[str, float] = {}
    sent = failed = 0
    connector = aiohttp.TCPConnector(limit=256)
    async with aiohttp.ClientSession(base_url, connector=connector) as session:
        client = Client(session, site, key)
        await identify_all(client, probes)
        tasks: set[asyncio.Task[None]] = set()

        async def background(n: int) -> None:
            nonlocal sent, failed
            kind = "page" if n % 3 == 0 else "event"
            ok = await client.call("POST", f"/api/v1/customers/bg{n % 5000:05d}/events",
                                   {"name": "viewed_product", "type": kind, "data": {"product_id": f"p{n % 50}"}})
            sent += ok
            failed += not ok

        tick = 0.01  # 100 ticks a second; each sends its share of the rate
        started = time.monotonic()
        n = probe_index = 0
        for step in range(int(seconds / tick)):
            target = started + step * tick
            await asyncio.sleep(max(0.0, target - time.monotonic()))
            due = int((step + 1) * tick * rate) - n
            for _ in range(due):
                task = asyncio.create_task(background(n))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                n += 1
            if step % 10 == 0 and probe_index < len(probes):
                task = asyncio.create_task(probe(client, probes[probe_index], probe_index, accepted))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                probe_index += 1
        elapsed = time.monotonic() - started
        if tasks:
            await asyncio.gather(*tasks)
    return accepted, {"background_events_per_s": round(sent / elapsed, 1), "failed": failed}


async def idle(base_url: str, site: str, key: str, sink: SmtpSink, count: int = 20) -> list[float]:
    """`count` probes one at a time, each after the previous email arrived."""
    latencies: list[float] = []
    async with aiohttp.ClientSession(base_url) as session:
        client = Client(session, site, key)
        people = [f"idle{i:03d}" for i in range(count)]
        await identify_all(client, people, concurrency=1)
        await asyncio.sleep(1.0)
        for i, person in enumerate(people):
            accepted: dict[str, float] = {}
            await probe(client, person, i, accepted)
            address = f"{person}@probe.example"
            deadline = time.monotonic() + 30
            while address not in sink.arrivals and time.monotonic() < deadline:
                await asyncio.sleep(0.002)
            if address in sink.arrivals and address in accepted:
                latencies.append(sink.arrivals[address] - accepted[address])
            await asyncio.sleep(0.3)
    return latencies


def loaded_run(ctx: Any, api: Any, rate: float, tag: str) -> dict[str, Any]:
    """Probes under `rate` background events/s; p50/p90/p99 and the samples."""
    site, key = api.env["NUDGE_SITE_ID"], api.env["NUDGE_API_KEY"]
    probes = [f"probe{tag}{i:05d}" for i in range(int(ctx.latency_seconds * 10) + 1)]
    started = time.time()
    accepted, load = asyncio.run(loaded(api.base_url, site, key, ctx.latency_seconds, rate, probes))
    wait_until(lambda: all(a in ctx.smtp.arrivals for a in accepted), 300, "every probe email", 0.2)
    samples = sorted((accepted[a] - started, ctx.smtp.arrivals[a] - accepted[a]) for a in accepted)
    latencies = [latency for _, latency in samples]
    return {
        "load": {"target_background_events_per_s": rate, **load, "probes_per_s": 10,
                 "seconds": ctx.latency_seconds},
        "probes": len(latencies),
        "p50_ms": round(1000 * percentile(latencies, 0.5), 1),
        "p90_ms": round(1000 * percentile(latencies, 0.9), 1),
        "p99_ms": round(1000 * percentile(latencies, 0.99), 1),
        "max_ms": round(1000 * max(latencies), 1),
        "samples": [[round(t, 3), round(1000 * lat, 1)] for t, lat in samples],
    }


def run(ctx: Any) -> dict[str, Any]:
    """The first background rate is the headline; the others show where latency stays flat."""
    api_module = getattr(ctx, "api_module", None)
    deployment = Deployment(ctx.root, "lat", ctx.smtp.url, worker_module=ctx.worker_module,
                            **({"api_module": api_module} if api_module else {}))
    try:
        api = deployment.start_api()
        deployment.start_worker()
        asyncio.run(deployment.warm_up())
        result: dict[str, Any] = {}
        for n, rate in enumerate(ctx.background_rates):
            run_result = loaded_run(ctx, api, rate, f"{deployment.app_id[-6:]}r{n}")
            ctx.log(f"latency at {run_result['load']['background_events_per_s']} ev/s: "
                    f"p50 {run_result['p50_ms']} ms, p99 {run_result['p99_ms']} ms")
            if n == 0:
                result.update(run_result)
            else:
                result.setdefault("other_rates", []).append(run_result)
            asyncio.run(deployment.wait_input_done(timeout=600))  # drain one rate's backlog first
        idle_latencies = asyncio.run(idle(api.base_url, api.env["NUDGE_SITE_ID"], api.env["NUDGE_API_KEY"], ctx.smtp))
        result.update(idle_median_ms=round(1000 * statistics.median(idle_latencies), 1),
                      idle_probes=len(idle_latencies))
        ctx.log(f"latency idle median {result['idle_median_ms']} ms")
        return result
    finally:
        deployment.stop()
