"""The delivery loop: claim due outbox rows, render, send over SMTP, record the outcome.

At-least-once: a crash between the relay's 250 and `mark_sent` leaves the row in `sending`;
the reaper re-queues it and it is sent again. Everything else is exactly once per message id.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from typing import Awaitable, Callable, Mapping

import asyncpg

from agents.render.email import render_email
from agents.render.errors import TemplateRenderError
from agents.sender import outbox
from agents.sender.smtp import (
    HeaderValueError,
    MailSender,
    PermanentDeliveryError,
    TransientDeliveryError,
    build_message,
    message_domain,
)
from schemas.inputs import Delivery, DeliveryStatus
from schemas.outbox import OutboxRow
from schemas.templates import EmailTemplate
from streams.settings import Settings

log = logging.getLogger(__name__)

PublishOutcome = Callable[[Delivery], Awaitable[None]]

RETRY_BASE_SECONDS = 30.0
RETRY_CAP_SECONDS = 6 * 3600.0
# With the defaults above, 16 attempts span roughly 20 to 40 hours of retrying (RFC 5321
# suggests giving up after days; a relay that is down that long needs an operator anyway).
MAX_ATTEMPTS = 16


def retry_delay(
    attempt: int,
    jitter: float,
    *,
    base: float = RETRY_BASE_SECONDS,
    cap: float = RETRY_CAP_SECONDS,
) -> float:
    """Seconds before retry after failed attempt `attempt` (1-based): doubling, capped, jittered.

    `jitter` in [0, 1) picks a point in the upper half of the window, so retries of a burst of
    failures spread out without ever retrying sooner than half the nominal delay.
    """
    nominal = min(cap, base * 2 ** max(0, attempt - 1))
    return nominal / 2 + nominal / 2 * jitter


def unsubscribe_url(settings: Settings, message_id: str) -> str:
    """The one-click unsubscribe link for a message (unsigned for now)."""
    return f"{settings.public_url.rstrip('/')}/unsubscribe/{message_id}"


async def _publish(publish_outcome: PublishOutcome, outcome: Delivery) -> None:
    try:
        await publish_outcome(outcome)
    except asyncio.CancelledError:
        raise
    except Exception:
        # The row already holds the outcome; losing the feedback must not stop delivery.
        log.exception("could not publish delivery outcome for %s", outcome.message_id)


async def _fail(
    pool: asyncpg.Pool,
    row: OutboxRow,
    reason: str,
    status: DeliveryStatus,
    publish_outcome: PublishOutcome,
    now: float,
) -> None:
    await outbox.mark_failed(pool, row.message_id, reason, now=now)
    await _publish(
        publish_outcome,
        Delivery(
            person=row.person,
            at=now,
            message_id=row.message_id,
            status=status,
            campaign_id=row.campaign_id,
            template=row.template,
            reason=reason,
        ),
    )


async def deliver_one(
    pool: asyncpg.Pool,
    sender: MailSender,
    row: OutboxRow,
    templates: Mapping[str, EmailTemplate],
    settings: Settings,
    publish_outcome: PublishOutcome,
    now_fn: Callable[[], float] = time.time,
    *,
    max_attempts: int = MAX_ATTEMPTS,
    jitter_fn: Callable[[], float] = random.random,
) -> str:
    """Render and send one claimed row and record what happened; returns the row's new status."""
    template = templates.get(row.template)
    if template is None:
        await _fail(pool, row, f"unknown template {row.template!r}", "failed",
                    publish_outcome, now_fn())
        return "failed"
    if not row.to_address:
        await _fail(pool, row, "the person has no email address", "failed",
                    publish_outcome, now_fn())
        return "failed"
    link = unsubscribe_url(settings, row.message_id)
    try:
        rendered = render_email(template, row.command.context, unsubscribe_url=link)
        message = build_message(
            rendered,
            to=row.to_address,
            message_id=row.message_id,
            mail_from=settings.mail_from,
            domain=message_domain(settings.mail_from),
            unsubscribe_url=None if row.command.transactional else link,
            date=now_fn(),
        )
    except (TemplateRenderError, HeaderValueError) as exc:
        await _fail(pool, row, str(exc), "failed", publish_outcome, now_fn())
        return "failed"

    try:
        response = await sender.send(message)
    except TransientDeliveryError as exc:
        if row.attempts >= max_attempts:
            reason = f"gave up after {row.attempts} attempts; last error: {exc}"
            await _fail(pool, row, reason, "failed", publish_outcome, now_fn())
            return "failed"
        delay = retry_delay(row.attempts, jitter_fn())
        await outbox.mark_retry(pool, row.message_id, str(exc), delay, now=now_fn())
        return "queued"
    except PermanentDeliveryError as exc:
        await _fail(pool, row, f"refused by the relay: {exc}", "bounced",
                    publish_outcome, now_fn())
        return "failed"

    now = now_fn()
    # The relay has the message now: record it even if this task is being cancelled, or the
    # reaper would send it a second time.
    await asyncio.shield(outbox.mark_sent(pool, row.message_id, response, now=now))
    await _publish(
        publish_outcome,
        Delivery(
            person=row.person,
            at=now,
            message_id=row.message_id,
            status="sent",
            campaign_id=row.campaign_id,
            template=row.template,
        ),
    )
    return "sent"


async def deliver_due(
    pool: asyncpg.Pool,
    sender: MailSender,
    templates: Mapping[str, EmailTemplate],
    settings: Settings,
    publish_outcome: PublishOutcome,
    now_fn: Callable[[], float] = time.time,
    limit: int = 50,
    *,
    max_attempts: int = MAX_ATTEMPTS,
    jitter_fn: Callable[[], float] = random.random,
) -> int:
    """One round: claim up to `limit` due rows and deliver each; returns how many were claimed."""
    rows = await outbox.claim_due(pool, limit, now=now_fn())
    for row in rows:
        await deliver_one(
            pool, sender, row, templates, settings, publish_outcome, now_fn,
            max_attempts=max_attempts, jitter_fn=jitter_fn,
        )
    return len(rows)


class DeliveryLoop:
    """Runs `deliver_due` until cancelled; `wake()` ends an idle sleep early (new rows queued)."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        sender: MailSender,
        templates: Mapping[str, EmailTemplate],
        settings: Settings,
        publish_outcome: PublishOutcome,
        *,
        now_fn: Callable[[], float] = time.time,
        limit: int = 50,
        idle_seconds: float = 1.0,
        reap_every_seconds: float = 60.0,
        stuck_after_seconds: float = 600.0,
        max_attempts: int = MAX_ATTEMPTS,
        wake_event: asyncio.Event | None = None,
    ) -> None:
        self.pool = pool
        self.sender = sender
        # Replace this mapping to pick up reloaded templates; the next round uses it.
        self.templates = templates
        self.settings = settings
        self.publish_outcome = publish_outcome
        self.now_fn = now_fn
        self.limit = limit
        self.idle_seconds = idle_seconds
        self.reap_every_seconds = reap_every_seconds
        self.stuck_after_seconds = stuck_after_seconds
        self.max_attempts = max_attempts
        # A caller may share its own event (set it when rows are queued) instead of calling wake().
        self._wake = wake_event if wake_event is not None else asyncio.Event()

    def wake(self) -> None:
        """Start the next round now instead of after the idle sleep."""
        self._wake.set()

    async def _idle(self) -> None:
        try:
            await asyncio.wait_for(self._wake.wait(), self.idle_seconds)
        except asyncio.TimeoutError:
            pass
        self._wake.clear()

    async def run(self) -> None:
        """Deliver until cancelled. Errors are logged and retried; a lost claim is reaped later."""
        next_reap = 0.0
        while True:
            try:
                now = self.now_fn()
                if now >= next_reap:
                    reaped = await outbox.reap_stuck(
                        self.pool, self.stuck_after_seconds, now=now
                    )
                    if reaped:
                        log.warning("re-queued %d messages whose sender stopped", reaped)
                    next_reap = now + self.reap_every_seconds
                self._wake.clear()
                claimed = await deliver_due(
                    self.pool, self.sender, self.templates, self.settings,
                    self.publish_outcome, self.now_fn, self.limit,
                    max_attempts=self.max_attempts,
                )
            except asyncio.CancelledError:
                raise
            except Exception:
                # Usually the database is unreachable: back off and try again.
                log.exception("delivery round failed; retrying")
                claimed = 0
            if claimed == 0:
                await self._idle()


async def run_delivery_loop(
    pool: asyncpg.Pool,
    sender: MailSender,
    templates: Mapping[str, EmailTemplate],
    settings: Settings,
    publish_outcome: PublishOutcome,
    *,
    now_fn: Callable[[], float] = time.time,
    limit: int = 50,
    idle_seconds: float = 1.0,
    reap_every_seconds: float = 60.0,
    stuck_after_seconds: float = 600.0,
    max_attempts: int = MAX_ATTEMPTS,
    wake_event: asyncio.Event | None = None,
) -> None:
    """Run a `DeliveryLoop` until cancelled; setting `wake_event` starts the next round early."""
    loop = DeliveryLoop(
        pool, sender, templates, settings, publish_outcome,
        now_fn=now_fn, limit=limit, idle_seconds=idle_seconds,
        reap_every_seconds=reap_every_seconds, stuck_after_seconds=stuck_after_seconds,
        max_attempts=max_attempts, wake_event=wake_event,
    )
    await loop.run()
