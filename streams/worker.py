"""`nudge worker`: build the Faust app from settings and attach every agent to it."""

from __future__ import annotations

import asyncio
import gc

from streams.app import Runtime, build_app
from streams.settings import Settings


def build_worker(settings: Settings) -> Runtime:
    """The app with the person, sender, projector and broadcast agents registered on it."""
    from agents.broadcast import agent as broadcast_agent
    from agents.person import agent as person_agent
    from agents.projector import agent as projector_agent
    from agents.sender import agent as sender_agent
    from streams.console.worker_web import register_worker_web

    runtime = build_app(settings)
    person_agent.register(runtime)
    sender_agent.register(runtime)
    projector_agent.register(runtime)
    broadcast_agent.register(runtime)
    register_worker_web(runtime)
    return runtime


async def prepare(settings: Settings) -> None:
    """Before Faust starts: migrations, every topic, and the first campaign load."""
    from agents.person.campaign_source import campaign_source
    from streams.http.publisher import ensure_topic
    from streams.migrations import apply_migrations

    await apply_migrations(settings.database_url, settings.app_id)
    # Faust ignores a source topic missing at assignment time until restarted.
    replicated = {"replication_factor": settings.replication_factor, "config": settings.topic_config}
    for topic in (settings.input_topic, settings.sends_topic, settings.projections_topic,
                  settings.broadcasts_topic):
        await ensure_topic(settings.kafka_bootstrap, topic, settings.partitions, **replicated)
    await ensure_topic(settings.kafka_bootstrap, settings.dead_letter_topic, 1, **replicated)
    # Before any input is consumed: a trigger must never meet an empty campaign set.
    await campaign_source.reload(settings.campaigns_dir, settings)


def run_worker(settings: Settings, loglevel: str) -> None:
    """Prepare, then run a Faust worker until it is stopped."""
    from faust.worker import Worker

    from streams.local_state import drop_stale_partitions, restore_in_bulk
    from streams.log_format import logging_config

    asyncio.run(prepare(settings))
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    runtime = build_worker(settings)
    drop_stale_partitions(runtime)
    restore_in_bulk(runtime)
    tune_garbage_collector()
    json_logs = settings.log_format == "json"
    Worker(
        runtime.app,
        loglevel=loglevel,
        # Text keeps Faust's own format; JSON replaces it, and drops the banner (not a log line).
        logging_config=logging_config("json", loglevel) if json_logs else None,
        quiet=json_logs,
    ).execute_from_commandline()


def tune_garbage_collector() -> None:
    """Collect cycles less often than CPython's default (every 700 allocations).

    The person cache keeps tens of thousands of people alive, and each full collection walks
    them all: with the defaults the collector took about 40% of the decision core's CPU in
    `bench/experiments/engine_only.py`. What exists at start is frozen out of collections.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 10)
