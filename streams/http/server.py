"""The HTTP ingestion server: builds the aiohttp application and runs it with its publisher."""

from __future__ import annotations

import asyncio
import logging
import signal

from aiohttp import web

from streams.http.publisher import InputPublisher
from streams.http.track_api import api_errors, track_api_routes
from streams.settings import Settings

log = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 1024 * 1024


def create_app(settings: Settings, publisher: InputPublisher) -> web.Application:
    """The aiohttp application serving every ingestion endpoint."""
    app = web.Application(middlewares=[api_errors], client_max_size=MAX_REQUEST_BYTES)
    app.add_routes(track_api_routes(publisher.publish, settings.site_id, settings.api_key))

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    app.add_routes([web.get("/health", health)])
    return app


async def serve(settings: Settings) -> None:
    """Run the API until SIGTERM or SIGINT, flushing accepted inputs before exiting."""
    publisher = InputPublisher(
        settings.kafka_bootstrap, settings.input_topic, settings.partitions
    )
    await publisher.start()
    runner = web.AppRunner(create_app(settings, publisher), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.http_host, settings.http_port)
    await site.start()
    log.info("Track API listening on http://%s:%s", settings.http_host, settings.http_port)
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
