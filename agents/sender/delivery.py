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

from agents.render.email import RenderLimits, render_email
from agents.render.errors import TemplateRenderError
from agents.render.mime import HeaderValueError, OutgoingEmail, build_email, message_domain
from agents.render.tracking import add_open_pixel, rewrite_links
from agents.sender import outbox, preferences, suppression
from agents.sender.dead_letter import DeadLetter, PublishDeadLetter
from agents.sender.limits import FrequencyLimits, next_allowed_at
from agents.sender.links import MessageLinks, message_links
from agents.sender.smtp import MailSender, PermanentDeliveryError, TransientDeliveryError
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


def unsubscribe_mailto(settings: Settings) -> str:
    """The mailto: address of List-Unsubscribe (NUDGE_UNSUBSCRIBE_MAILTO, else unsubscribe@domain)."""
    return settings.unsubscribe_mailto or f"unsubscribe@{message_domain(settings.mail_from)}"


def links_for(settings: Settings, row: OutboxRow) -> MessageLinks:
    """The signed links of one message."""
    return message_links(
        settings.public_url, settings.secret_key, row.message_id, row.person,
        mailto=unsubscribe_mailto(settings),
    )


def unsubscribe_url(settings: Settings, message_id: str, person: str) -> str:
    """The signed one-click unsubscribe link for a message to `person`."""
    return message_links(settings.public_url, settings.secret_key, message_id, person).unsubscribe


async def _publish(publish_outcome: PublishOutcome, outcome: Delivery) -> None:
    try:
        await publish_outcome(outcome)
    except asyncio.CancelledError:
        raise
    except Exception:
        # The row already holds the outcome; losing the feedback must not stop delivery.
        log.exception("could not publish delivery outcome for %s", outcome.message_id)


async def _dead_letter(
    publish_dead_letter: PublishDeadLetter | None, row: OutboxRow, code: int, reason: str
) -> None:
    if publish_dead_letter is None:
        return
    letter = DeadLetter(
        message_id=row.message_id, code=code, reason=reason, attempts=row.attempts,
        command=row.command,
    )
    try:
        await publish_dead_letter(letter)
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("could not publish %s to the dead-letter topic", row.message_id)


def _outcome(row: OutboxRow, status: DeliveryStatus, now: float, reason: str | None) -> Delivery:
    return Delivery(
        person=row.person,
        at=now,
        message_id=row.message_id,
        status=status,
        campaign_id=row.campaign_id,
        template=row.template,
        reason=reason,
    )


async def _fail(
    pool: asyncpg.Pool,
    row: OutboxRow,
    reason: str,
    status: DeliveryStatus,
    publish_outcome: PublishOutcome,
    now: float,
    *,
    event: str = "failed",
) -> None:
    if event == "failed":
        await outbox.mark_failed(pool, row.message_id, reason, now=now)
    else:
        await outbox.mark_skipped(pool, row.message_id, event, reason, now=now)
    await _publish(publish_outcome, _outcome(row, status, now, reason))


# A transactional send (POST /v1/send/email) may carry subject/body overrides here, in its
# render context's `campaign`; campaign sends never do.
OVERRIDES_KEY = "overrides"
INLINE_TEMPLATE = "inline"


def resolve_template(
    row: OutboxRow, templates: Mapping[str, EmailTemplate]
) -> EmailTemplate | None:
    """The template to render: the named one, with a transactional send's overrides applied."""
    overrides = row.command.context.campaign.get(OVERRIDES_KEY) if row.command.transactional else None
    base = templates.get(row.template)
    if not isinstance(overrides, dict) or not overrides:
        return base
    fields = {
        field: overrides[key]
        for key, field in (("subject", "subject"), ("body", "body"), ("from", "from_address"),
                           ("reply_to", "reply_to"), ("preheader", "preheader"))
        if isinstance(overrides.get(key), str)
    }
    if base is None:
        if "subject" not in fields or "body" not in fields:
            return None
        return EmailTemplate(id=row.template, **fields)
    return base.model_copy(update=fields)


async def _policy_check(
    pool: asyncpg.Pool,
    row: OutboxRow,
    template: EmailTemplate,
    settings: Settings,
    publish_outcome: PublishOutcome,
    now: float,
) -> str | None:
    """Suppression, topic preference and frequency limit; the row's new status if it stops here."""
    suppressed = await suppression.suppression_of(pool, row.to_address or "")
    if suppressed is not None:
        reason = f"suppressed: {row.to_address} is on the suppression list ({suppressed.reason})"
        await _fail(pool, row, reason, "failed", publish_outcome, now, event="suppressed")
        return "failed"
    if row.command.transactional:
        return None
    topic = template.topic or row.command.context.campaign.get("topic")
    if isinstance(topic, str) and topic:
        if not await preferences.is_subscribed(pool, row.person, topic):
            reason = f"unsubscribed from topic {topic!r}"
            await _fail(pool, row, reason, "failed", publish_outcome, now, event="unsubscribed")
            return "failed"
    limits = FrequencyLimits(settings.max_marketing_per_day, settings.max_marketing_per_week)
    if limits.active:
        sent = await outbox.recent_marketing_sends(
            pool, row.person, row.message_id, now - limits.longest_window,
            row.claimed_at if row.claimed_at is not None else now,
        )
        allowed_at = next_allowed_at(limits, sent, now)
        if allowed_at is not None:
            why = (
                f"over the marketing limit ({limits.per_day or '-'}/day, "
                f"{limits.per_week or '-'}/week)"
            )
            if row.command.limit_policy == "drop":
                await _fail(pool, row, f"dropped: {why}", "failed", publish_outcome, now,
                            event="dropped")
                return "failed"
            await outbox.defer(pool, row.message_id, allowed_at, f"{why}; deferred", now=now)
            return "queued"
    return None


def build_for_row(
    row: OutboxRow,
    template: EmailTemplate,
    settings: Settings,
    now: float,
) -> OutgoingEmail:
    """Render a row's template with its signed links and tracking, and build the MIME message."""
    links = links_for(settings, row)
    rendered = render_email(
        template,
        row.command.context,
        unsubscribe_url=links.unsubscribe,
        preferences_url=links.preferences,
        limits=RenderLimits(settings.render_timeout_seconds, settings.render_max_chars),
    )
    html = rendered.html
    if settings.track_clicks:
        html = rewrite_links(html, links.click, keep_prefix=settings.public_url.rstrip("/") + "/")
    if settings.track_opens:
        html = add_open_pixel(html, links.open_pixel)
    transactional = row.command.transactional
    return build_email(
        subject=rendered.subject,
        text=rendered.text,
        html=html,
        to=row.to_address or "",
        message_id=row.message_id,
        mail_from=rendered.from_address or settings.mail_from,
        reply_to=rendered.reply_to,
        domain=message_domain(settings.mail_from),
        unsubscribe_url=None if transactional else links.unsubscribe,
        unsubscribe_mailto=None if transactional else links.unsubscribe_mailto,
        date=now,
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
    publish_dead_letter: PublishDeadLetter | None = None,
) -> str:
    """Check, render and send one claimed row and record what happened; returns its new status."""
    template = resolve_template(row, templates)
    if template is None:
        reason = f"unknown template {row.template!r}"
        await _fail(pool, row, reason, "failed", publish_outcome, now_fn())
        await _dead_letter(publish_dead_letter, row, 0, reason)
        return "failed"
    if not row.to_address:
        await _fail(pool, row, "the person has no email address", "failed",
                    publish_outcome, now_fn())
        return "failed"
    stopped = await _policy_check(pool, row, template, settings, publish_outcome, now_fn())
    if stopped is not None:
        return stopped
    try:
        message = build_for_row(row, template, settings, now_fn())
    except (TemplateRenderError, HeaderValueError) as exc:
        await _fail(pool, row, str(exc), "failed", publish_outcome, now_fn())
        await _dead_letter(publish_dead_letter, row, 0, str(exc))
        return "failed"

    try:
        response = await sender.send(message)
    except TransientDeliveryError as exc:
        if row.attempts >= max_attempts:
            reason = f"gave up after {row.attempts} attempts; last error: {exc}"
            await _fail(pool, row, reason, "failed", publish_outcome, now_fn())
            await _dead_letter(publish_dead_letter, row, exc.code, reason)
            return "failed"
        delay = retry_delay(row.attempts, jitter_fn())
        await outbox.mark_retry(pool, row.message_id, str(exc), delay, now=now_fn())
        return "queued"
    except PermanentDeliveryError as exc:
        now = now_fn()
        reason = f"refused by the relay: {exc}"
        if exc.hard_bounce:
            # Customer.io's rule: a hard bounce suppresses the address, not the person.
            await suppression.suppress(
                pool, row.to_address, "hard_bounce", detail=f"{row.message_id}: {exc}", now=now
            )
        await _fail(pool, row, reason, "bounced" if exc.hard_bounce else "failed",
                    publish_outcome, now, event="bounced" if exc.hard_bounce else "failed")
        await _dead_letter(publish_dead_letter, row, exc.code, reason)
        return "failed"

    now = now_fn()
    # The relay has the message now: record it even if this task is being cancelled, or the
    # reaper would send it a second time.
    await asyncio.shield(outbox.mark_sent(pool, row.message_id, response, now=now))
    await _publish(publish_outcome, _outcome(row, "sent", now, None))
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
    publish_dead_letter: PublishDeadLetter | None = None,
    concurrency: int = 1,
) -> int:
    """One round: claim up to `limit` due rows and deliver them, `concurrency` at a time.

    Cancelled (shutdown), it lets messages already being sent finish and be recorded, and
    gives the claims it has not started back to the queue, so no claim waits for the reaper.
    Returns how many rows were claimed.
    """
    rows = await outbox.claim_due(pool, limit, now=now_fn())
    if not rows:
        return 0
    gate = asyncio.Semaphore(max(1, concurrency))
    stopping = False
    untried: list[str] = []

    async def one(row: OutboxRow) -> None:
        async with gate:
            if stopping:
                untried.append(row.message_id)
                return
            await deliver_one(
                pool, sender, row, templates, settings, publish_outcome, now_fn,
                max_attempts=max_attempts, jitter_fn=jitter_fn,
                publish_dead_letter=publish_dead_letter,
            )

    batch = asyncio.gather(*(one(row) for row in rows))
    try:
        await asyncio.shield(batch)
    except asyncio.CancelledError:
        stopping = True
        # In-flight sends end within the SMTP timeout; their outcome is recorded.
        await asyncio.gather(batch, return_exceptions=True)
        await outbox.release(pool, untried, now=now_fn())
        raise
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
        publish_dead_letter: PublishDeadLetter | None = None,
        concurrency: int = 1,
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
        self.publish_dead_letter = publish_dead_letter
        self.concurrency = concurrency
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
                    publish_dead_letter=self.publish_dead_letter,
                    concurrency=self.concurrency,
                )
            except asyncio.CancelledError:
                raise
            except Exception:
                # Usually the database is unreachable: back off and try again.
                log.exception("delivery round failed; retrying")
                claimed = 0
            if claimed == 0:
                await self._idle()
