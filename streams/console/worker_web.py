"""The worker's operator endpoints on Faust's web server: `/metrics`, `/health`, `/ready`.

`/metrics` samples what only this worker can see at scrape time (consumer lag per assigned
partition, partitions assigned) and the outbox depth (shared by every worker: aggregate it
with max(), not sum()), then serves `streams.metrics.REGISTRY`. `/ready` is 200 once Kafka
and PostgreSQL answer and this worker's partitions are assigned and their tables restored.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import faust
from faust.types import TP
from faust.web import Request, Response, View

from streams import metrics
from streams.app import Runtime
from streams.console.readiness import NotReady, postgres_check, report, run_checks
from streams.database import get_pool
from streams.settings import Settings

log = logging.getLogger(__name__)

# The outbox count is one GROUP BY over the table: at most once per this many seconds.
OUTBOX_SAMPLE_SECONDS = 10.0
_STATUSES = ("queued", "sending", "sent", "failed")


class OutboxSampler:
    """Keeps `nudge_outbox_messages{status}` fresh without counting on every scrape."""

    def __init__(self, settings: Settings, every: float = OUTBOX_SAMPLE_SECONDS) -> None:
        self._settings = settings
        self._every = every
        self._last = float("-inf")
        self._lock = asyncio.Lock()

    async def sample(self) -> None:
        """Count the outbox by status if the last count is older than `every` seconds."""
        async with self._lock:
            if time.monotonic() - self._last < self._every:
                return
            pool = await get_pool(self._settings)
            rows = await pool.fetch("SELECT status, count(*) AS n FROM outbox GROUP BY status")
            counts = {r["status"]: r["n"] for r in rows}
            for status in _STATUSES:
                metrics.OUTBOX_DEPTH.labels(status=status).set(counts.get(status, 0))
            self._last = time.monotonic()


def _assignment(app: faust.App) -> set[TP]:
    consumer = app.consumer
    return set(consumer.assignment()) if consumer is not None else set()


async def sample_consumer_lag(app: faust.App) -> int:
    """Set `nudge_consumer_lag{topic,partition}` for every assigned partition; return their count."""
    assigned = _assignment(app)
    metrics.PARTITIONS_ASSIGNED.set(len(assigned))
    metrics.CONSUMER_LAG.clear()
    if not assigned:
        return 0
    consumer = app.consumer
    highwaters = await consumer.highwaters(*assigned)
    for tp in assigned:
        position = await consumer.position(tp)
        end = highwaters.get(tp)
        if position is None or end is None:
            continue
        metrics.CONSUMER_LAG.labels(topic=tp.topic, partition=str(tp.partition)).set(max(0, end - position))
    return len(assigned)


def kafka_check(app: faust.App, input_topic: str) -> Any:
    """Kafka answers for this worker's partitions, which include some of the input topic."""

    async def check() -> str:
        assigned = _assignment(app)
        if not assigned:
            raise NotReady("no partitions assigned yet (joining the consumer group)")
        # A round trip to the brokers: the end offsets of every assigned partition.
        await app.consumer.highwaters(*assigned)
        inputs = sorted(tp.partition for tp in assigned if tp.topic == input_topic)
        return f"{len(assigned)} partitions assigned; {input_topic} partitions {inputs}"

    return check


def restored_check(app: faust.App) -> Any:
    """The tables of the assigned partitions are restored from their changelogs."""

    async def check() -> str:
        if app.rebalancing:
            raise NotReady("a rebalance is in progress")
        # Faust's TableManagerT omits the `recovery` its TableManager has.
        if app.in_recovery or not app.tables.recovery.completed.is_set():  # type: ignore[attr-defined]
            raise NotReady("restoring tables from their changelogs")
        return "tables restored"

    return check


def register_worker_web(rt: Runtime) -> None:
    """Add `/metrics`, `/health` and `/ready` to the worker's Faust web server."""
    app, settings = rt.app, rt.settings
    outbox = OutboxSampler(settings)
    checks = {
        "kafka": kafka_check(app, settings.input_topic),
        "postgres": postgres_check(settings),
        "partitions": restored_check(app),
    }

    @app.page("/metrics")
    class MetricsView(View):
        async def get(self, request: Request) -> Response:
            """The Prometheus text exposition of this worker's metrics."""
            try:
                await asyncio.wait_for(sample_consumer_lag(app), 2.0)
            except Exception as exc:
                log.warning("consumer lag not sampled: %r", exc)
            try:
                await asyncio.wait_for(outbox.sample(), 2.0)
            except Exception as exc:
                log.warning("outbox depth not sampled: %r", exc)
            body, content_type = metrics.render()
            return self.bytes(body, content_type=content_type.split(";")[0])

    @app.page("/health")
    class HealthView(View):
        async def get(self, request: Request) -> Response:
            """Alive: the event loop answers."""
            return self.json({"ok": True})

    @app.page("/ready")
    class ReadyView(View):
        async def get(self, request: Request) -> Response:
            """200 when Kafka and PostgreSQL answer and partitions are assigned and restored."""
            status, body = report(await run_checks(checks))
            return self.json(body, status=status)
