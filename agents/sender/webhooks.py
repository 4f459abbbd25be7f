"""Webhook steps: POST the journey's JSON with retries, off the journey's path.

A journey never waits for its webhook: the engine emits the call and moves on. A failing
webhook is retried with backoff and, when it gives up, logged loudly; it never wedges anything.
"""

from __future__ import annotations

import asyncio
import logging
import random

import aiohttp

from schemas.commands import CallWebhook
from schemas.errors import DeliveryError

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
BASE_DELAY_SECONDS = 1.0
TIMEOUT_SECONDS = 10.0

_running: set[asyncio.Task[None]] = set()
_seen_calls: set[str] = set()


class WebhookFailed(DeliveryError, RuntimeError):
    """A webhook answered non-2xx or could not be reached: check the receiving endpoint; retried, then logged."""


async def call_webhook(
    session: aiohttp.ClientSession, command: CallWebhook
) -> int:
    """POST once; return the status, raising WebhookFailed for anything but 2xx."""
    try:
        async with session.post(
            command.url,
            json=command.body,
            headers={"Idempotency-Key": command.call_id, **command.headers},
            timeout=aiohttp.ClientTimeout(total=TIMEOUT_SECONDS),
        ) as response:
            if response.status // 100 != 2:
                raise WebhookFailed(f"{command.url} answered HTTP {response.status}")
            return response.status
    except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
        raise WebhookFailed(f"{command.url} unreachable: {exc!r}") from exc


async def call_with_retries(command: CallWebhook) -> bool:
    """Call until a 2xx or MAX_ATTEMPTS; True when it succeeded."""
    async with aiohttp.ClientSession() as session:
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                await call_webhook(session, command)
                return True
            except WebhookFailed as exc:
                log.warning("webhook %s attempt %d failed: %s", command.call_id, attempt, exc)
                if attempt < MAX_ATTEMPTS:
                    delay = BASE_DELAY_SECONDS * 2 ** (attempt - 1)
                    await asyncio.sleep(delay * (0.5 + random.random()))
    log.error("webhook %s to %s failed %d times; giving up", command.call_id, command.url, MAX_ATTEMPTS)
    return False


def start_call(command: CallWebhook) -> None:
    """Run the call in the background; a replayed command already running is not repeated."""
    if command.call_id in _seen_calls:
        return
    _seen_calls.add(command.call_id)
    task = asyncio.get_running_loop().create_task(call_with_retries(command))
    _running.add(task)
    task.add_done_callback(_running.discard)
