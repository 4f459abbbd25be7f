"""The HTTP API server: every operation on one aiohttp application, run with its publisher.

`api_operations` is the whole API (the OpenAPI document and the security tests walk it);
`serve` runs it over http, or https when NUDGE_TLS_CERT / NUDGE_TLS_KEY are set.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import Protocol

from aiohttp import web

from agents.check.event_schema import SCHEMA_FILE, SchemaFile
from schemas.inputs import Input
from streams.console.web import register_console
from streams.http.broadcast_api import broadcast_api_operations
from streams.http.browser_api import browser_operations
from streams.http.email_links import email_link_operations
from streams.http.errors import api_errors
from streams.http.manual_segments_api import manual_segment_operations
from streams.http.openapi import openapi_operations
from streams.http.operations import Call, Edge, Operation, add_operations
from streams.http.publisher import InputPublisher, Publish
from streams.http.read_api import read_api_operations
from streams.http.segment_api import segment_api_operations
from streams.http.strict_events import strict_publish
from streams.http.tls import server_context
from streams.http.track_api import track_api_operations
from streams.http.track_v2 import track_v2_operations
from streams.http.transactional_api import transactional_operations
from streams.http.webhooks import webhook_operations
from streams.rate_limit import RateLimiter
from streams.settings import Settings, require_secrets, reveal

log = logging.getLogger(__name__)

# aiohttp's own ceiling; each operation reads at most its own, smaller limit.
MAX_REQUEST_BYTES = 1024 * 1024


class Publisher(Protocol):
    """What the routes publish through: `InputPublisher`, or a list in unit tests."""

    async def publish(self, inputs: list[Input]) -> None:
        """Hand `inputs` to Kafka (or the test's list)."""


def edge_for(settings: Settings) -> Edge:
    """The rate limits and browser origins of `settings`."""
    return Edge(
        per_credential=RateLimiter(settings.rate_limit_per_second),
        per_address=RateLimiter(settings.browser_rate_limit_per_second),
        cors_origins=settings.cors_origin_set,
    )


def api_operations(settings: Settings, publisher: Publisher) -> list[Operation]:
    """Every operation of the API, `/openapi.json` included."""
    # Inputs from producers; in strict mode their tracked events must match events.yaml.
    publish: Publish = publisher.publish
    if settings.strict_events:
        publish = strict_publish(publish, SchemaFile(settings.campaigns_dir / SCHEMA_FILE).current)

    async def health(call: Call) -> web.Response:
        return web.json_response({"ok": True})

    operations = [
        *track_api_operations(publish, settings.site_id, settings.api_key.get_secret_value()),
        *track_v2_operations(publish, settings.site_id, settings.api_key.get_secret_value()),
        *manual_segment_operations(publisher.publish, settings),
        *segment_api_operations(publish, reveal(settings.segment_write_key), settings.browser_write_key),
        *browser_operations(settings.browser_write_key, settings.public_url),
        *webhook_operations(publish, reveal(settings.segment_write_key), reveal(settings.webhook_secret)),
        *email_link_operations(settings, publisher.publish),
        *transactional_operations(settings),
        *read_api_operations(settings),
        *broadcast_api_operations(settings),
        Operation("GET", "/health", health, "Liveness", "Meta", errors=()),
    ]
    return [*operations, *openapi_operations(operations, settings.public_url)]


def operations_app(operations: list[Operation], settings: Settings | None = None) -> web.Application:
    """An aiohttp application serving `operations` (the whole API, or a few in tests)."""
    app = web.Application(
        middlewares=[api_errors],
        client_max_size=MAX_REQUEST_BYTES,
        # streams/http/bodies.py decompresses, bounded, with errors in the API's shape.
        handler_args={"auto_decompress": False},
    )
    add_operations(app, operations, edge_for(settings or Settings()))
    return app


def create_app(settings: Settings, publisher: Publisher) -> web.Application:
    """The aiohttp application serving the whole API, and the console beside it."""
    app = operations_app(api_operations(settings, publisher), settings)
    # The web console, /metrics and /ready (streams/console).
    register_console(app, settings, getattr(publisher, "reachable", None))
    return app


async def serve(settings: Settings) -> None:
    """Run the API until SIGTERM or SIGINT, flushing accepted inputs before exiting."""
    require_secrets(settings, api=True)
    ssl_context = server_context(settings.tls_cert, settings.tls_key) if settings.tls_cert else None
    publisher = InputPublisher(
        settings.kafka_bootstrap, settings.input_topic, settings.partitions,
        replication_factor=settings.replication_factor, topic_config=settings.topic_config,
        timeout=settings.publish_timeout_seconds,
    )
    await publisher.start()
    runner = web.AppRunner(create_app(settings, publisher), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.http_host, settings.http_port, ssl_context=ssl_context)
    await site.start()
    scheme = "https" if ssl_context else "http"
    log.info("API listening on %s://%s:%s", scheme, settings.http_host, settings.http_port)
    if settings.log_format != "json":  # JSON logs stay one object per line
        print(f"[nudge api] listening on {scheme}://{settings.http_host}:{settings.http_port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
        await publisher.stop()
