"""The HTTP ingestion server: builds the aiohttp application and runs it with its publisher."""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import Protocol

from aiohttp import web

from streams.console.web import register_console
from streams.http.email_links import email_link_routes
from streams.http.errors import api_errors
from streams.http.event_schema import SCHEMA_FILE, SchemaFile, strict_publish
from streams.http.manual_segments_api import manual_segment_routes
from streams.http.openapi import openapi_routes
from streams.http.publisher import InputPublisher
from streams.http.rate_limit import RateLimiter
from streams.http.read_api import read_api_routes
from streams.http.segment_api import segment_api_routes
from streams.http.broadcast_api import broadcast_api_routes
from streams.http.track_api import Publish, track_api_routes
from streams.http.transactional_api import transactional_routes
from streams.http.webhooks import webhook_routes
from streams.settings import Settings

log = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 1024 * 1024


class Publisher(Protocol):
    """What the routes publish through: `InputPublisher`, or a list in unit tests."""

    publish: Publish


def create_app(settings: Settings, publisher: Publisher) -> web.Application:
    """The aiohttp application serving every ingestion endpoint."""
    app = web.Application(
        middlewares=[api_errors],
        client_max_size=MAX_REQUEST_BYTES,
        # streams/http/bodies.py decompresses, bounded, with errors in the API's shape.
        handler_args={"auto_decompress": False},
    )
    limiter = RateLimiter(settings.rate_limit_per_second)
    # Inputs from producers; in strict mode their tracked events must match events.yaml.
    publish = publisher.publish
    if settings.strict_events:
        publish = strict_publish(publish, SchemaFile(settings.campaigns_dir / SCHEMA_FILE).current)
    app.add_routes(track_api_routes(publish, settings.site_id, settings.api_key, limiter=limiter))
    app.add_routes(segment_api_routes(publish, settings.segment_write_key, limiter=limiter))
    app.add_routes(
        webhook_routes(publish, settings.segment_write_key, settings.webhook_secret, limiter=limiter)
    )
    app.add_routes(openapi_routes(settings.public_url))
    app.add_routes(email_link_routes(settings, publisher.publish))
    app.add_routes(transactional_routes(settings))
    app.add_routes(read_api_routes(settings))
    app.add_routes(manual_segment_routes(publisher.publish, settings, limiter=limiter))
    app.add_routes(broadcast_api_routes(settings))

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    app.add_routes([web.get("/health", health)])
    # The web console, /metrics and /ready (streams/console).
    register_console(app, settings, getattr(publisher, "reachable", None))
    return app


async def serve(settings: Settings) -> None:
    """Run the API until SIGTERM or SIGINT, flushing accepted inputs before exiting."""
    publisher = InputPublisher(
        settings.kafka_bootstrap, settings.input_topic, settings.partitions,
        replication_factor=settings.replication_factor, topic_config=settings.topic_config,
        timeout=settings.publish_timeout_seconds,
    )
    await publisher.start()
    runner = web.AppRunner(create_app(settings, publisher), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.http_host, settings.http_port)
    await site.start()
    log.info("Track API listening on http://%s:%s", settings.http_host, settings.http_port)
    if settings.log_format != "json":  # JSON logs stay one object per line
        print(f"[nudge api] listening on http://{settings.http_host}:{settings.http_port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
        await publisher.stop()
