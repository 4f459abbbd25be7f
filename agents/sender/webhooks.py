"""Webhook steps: POST the journey's JSON with retries, off the journey's path.

A journey never waits for its webhook: the engine emits the call and moves on. A failing
webhook is retried with backoff and, when it gives up, logged loudly; it never wedges anything.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import OrderedDict

import aiohttp

from schemas.commands import CallWebhook
from schemas.errors import DeliveryError
from streams.retry import retry

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
BASE_DELAY_SECONDS = 1.0
TIMEOUT_SECONDS = 10.0

# Call ids remembered, so a replayed command is not called again: the most recent ones only.
# A replay reaches back at most a checkpoint's worth of inputs, far fewer than this.
SEEN_CALLS_KEPT = 100_000


class RecentIds:
    """The last `capacity` ids added, oldest forgotten first: an idempotency set of bounded size."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._ids: OrderedDict[str, None] = OrderedDict()

    def add(self, key: str) -> bool:
        """Remember `key`; False when it was already remembered."""
        if key in self._ids:
            self._ids.move_to_end(key)
            return False
        self._ids[key] = None
        if len(self._ids) > self.capacity:
            self._ids.popitem(last=False)
        return True

    def __len__(self) -> int:
        return len(self._ids)


_running: set[asyncio.Task[bool]] = set()
_seen_calls = RecentIds(SEEN_CALLS_KEPT)


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
    except (TimeoutError, aiohttp.ClientError) as exc:
        raise WebhookFailed(f"{command.url} unreachable: {exc!r}") from exc


async def call_with_retries(command: CallWebhook) -> bool:
    """Call until a 2xx or MAX_ATTEMPTS; True when it succeeded."""
    async with aiohttp.ClientSession() as session:
        try:
            await retry(
                lambda: call_webhook(session, command), f"webhook {command.call_id}", on=WebhookFailed,
                attempts=MAX_ATTEMPTS, first=BASE_DELAY_SECONDS, cap=60.0, jitter=random.random, log=log,
            )
            return True
        except WebhookFailed as exc:
            log.error("webhook %s to %s failed %d times; giving up: %s", command.call_id, command.url,
                      MAX_ATTEMPTS, exc)
            return False


def start_call(command: CallWebhook) -> None:
    """Run the call in the background; a replayed command already running is not repeated."""
    if not _seen_calls.add(command.call_id):
        return
    task = asyncio.get_running_loop().create_task(call_with_retries(command))
    _running.add(task)
    task.add_done_callback(_running.discard)
