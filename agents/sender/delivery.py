"""The delivery loop: lease due outbox rows, check, render, send over SMTP, record outcomes.

A claim is a lease (`delivery_lease_seconds`) owned by the loop's name and renewed while the
loop works; an expired lease goes back to the queue, and a loop that starts takes its own back
at once. At-least-once only in one window: a crash between the relay's 250 and the `sent`
write (one statement) re-sends that message, and `nudge_delivery_leases_reclaimed` counts
every row that window could have touched. Everything else happens once per message id.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from functools import partial

import asyncpg

from agents.render.email import RenderLimits, render_email
from agents.render.errors import TemplateRenderError
from agents.render.mime import HeaderValueError, OutgoingEmail, build_email, message_domain
from agents.render.tracking import add_open_pixel, rewrite_links
from agents.sender import outbox, outcomes, suppression
from agents.sender.dead_letter import DeadLetter, PublishDeadLetter
from agents.sender.limits import FrequencyLimits
from agents.sender.links import MessageLinks, message_links
from agents.sender.outcomes import Outcome
from agents.sender.policy import BroadcastRates, Pending, check_batch
from agents.sender.smtp import MailSender, PermanentDeliveryError, TransientDeliveryError
from agents.sender.smtp_session import SendAbandoned
from schemas.addresses import AddressError
from schemas.inputs import Delivery, DeliveryStatus
from schemas.outbox import OutboxRow
from schemas.templates import EmailTemplate
from streams import metrics
from streams.retry import backoff, retry
from streams.settings import Settings

log = logging.getLogger(__name__)

RETRY_BASE_SECONDS = 30.0
RETRY_CAP_SECONDS = 6 * 3600.0
# With the defaults above, 16 attempts span roughly 20 to 40 hours of retrying (RFC 5321
# suggests giving up after days; a relay that is down that long needs an operator anyway).
MAX_ATTEMPTS = 16


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


def build_for_row(
    row: OutboxRow,
    template: EmailTemplate,
    settings: Settings,
    now: float,
) -> OutgoingEmail:
    """Render a row's template with its signed links and tracking, and build the MIME message.

    Raises TemplateRenderError, HeaderValueError, or AddressError for a recipient that is not
    exactly one valid address.
    """
    recipient = suppression.recipient(row.to_address or "").ascii
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
        to=recipient,
        message_id=row.message_id,
        mail_from=rendered.from_address or settings.mail_from,
        reply_to=rendered.reply_to,
        domain=message_domain(settings.mail_from),
        unsubscribe_url=None if transactional else links.unsubscribe,
        unsubscribe_mailto=None if transactional else links.unsubscribe_mailto,
        date=now,
    )




# --- the loop ------------------------------------------------------------------------------

# Publish a batch of delivery outcomes back to the people's partitions.
PublishOutcomes = Callable[[list[Delivery]], Awaitable[None]]

# Renew leases this many times per lease, and stop sending a row this long before its lease
# could run out, so a stalled or paused loop never sends a message someone else re-queued.
_RENEWALS_PER_LEASE = 4
_LEASE_SAFETY = 0.25
# Claimed batches a loop works on at once: the next claim overlaps the current sends.
_BATCHES_IN_FLIGHT = 2
# How long an outcome waits for others to share its statement.
_WRITE_LINGER_SECONDS = 0.003
# Pause between attempts to write outcomes while PostgreSQL is unreachable.
_WRITE_RETRY_SECONDS = 0.5


class OutcomeWriter:
    """Writes outcomes in groups: whatever arrived while the previous write ran goes in the next.

    So a `sent` is recorded within a few milliseconds and one statement of the relay's 250,
    and a burst costs one statement per group, not one per message. A write that fails
    (PostgreSQL down) is retried: an outcome is never dropped while the loop runs.
    """

    def __init__(self, pool: asyncpg.Pool, owner: str, now_fn: Callable[[], float]) -> None:
        self.pool, self.owner, self.now_fn = pool, owner, now_fn
        self._pending: list[tuple[Outcome, asyncio.Future[bool]]] = []
        self._flushing: asyncio.Task[None] | None = None

    async def write(self, outcome: Outcome) -> bool:
        """Record one outcome; True if it applied (see `outbox.record_outcomes`)."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._pending.append((outcome, future))
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.create_task(self._flush())
        # Shielded: the relay's answer must be recorded even when the caller is cancelled.
        return await asyncio.shield(future)

    async def write_all(self, items: list[Outcome]) -> set[str]:
        """Record several outcomes; the ids that applied."""
        applied = await asyncio.gather(*(self.write(o) for o in items))
        return {o.message_id for o, ok in zip(items, applied, strict=True) if ok}

    async def _record(self, outcomes: list[Outcome]) -> set[str]:
        return await outbox.record_outcomes(self.pool, self.owner, outcomes, now=self.now_fn())

    async def _flush(self) -> None:
        while self._pending:
            # Let the other sends finishing about now join this statement: a few milliseconds,
            # less than one SMTP exchange, for a fraction of the round trips.
            await asyncio.sleep(_WRITE_LINGER_SECONDS)
            group, self._pending = self._pending, []
            try:
                applied = await retry(
                    partial(self._record, [o for o, _ in group]),
                    f"recording {len(group)} delivery outcomes", on=outbox.DATABASE_UNREACHABLE,
                    first=_WRITE_RETRY_SECONDS, cap=_WRITE_RETRY_SECONDS, log=log,
                )
            except Exception as exc:
                for _, future in group:
                    if not future.done():
                        future.set_exception(exc)
                group = []
            for outcome, future in group:
                if not future.done():
                    future.set_result(outcome.message_id in applied)


def _outcome_input(row: OutboxRow, status: DeliveryStatus, now: float, reason: str | None) -> Delivery:
    return Delivery(
        person=row.person, at=now, message_id=row.message_id, status=status,
        campaign_id=row.campaign_id, template=row.template, reason=reason,
    )


class DeliveryLoop:
    """One named delivery loop: lease due rows, check, render, send, record; until cancelled.

    `round()` delivers one claimed batch and returns how many rows it claimed; `run()` starts
    the loop (taking back its own leases at once), renews its leases while it sends, re-queues
    anyone's expired leases, and keeps up to two batches in flight. Cancelled, it lets the
    messages being sent finish and be recorded and gives the rest back to the queue.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        sender: MailSender,
        templates: Mapping[str, EmailTemplate],
        settings: Settings,
        publish_outcomes: PublishOutcomes,
        *,
        name: str = "delivery/0",
        now_fn: Callable[[], float] = time.time,
        limit: int | None = None,
        concurrency: int | None = None,
        lease_seconds: float | None = None,
        idle_seconds: float = 1.0,
        max_attempts: int = MAX_ATTEMPTS,
        jitter_fn: Callable[[], float] = random.random,
        wake_event: asyncio.Event | None = None,
        publish_dead_letter: PublishDeadLetter | None = None,
        rates: BroadcastRates | None = None,
        heartbeat: Callable[[], Awaitable[object]] | None = None,
    ) -> None:
        self.pool = pool
        self.sender = sender
        # Replace this mapping to pick up reloaded templates; the next batch uses it.
        self.templates = templates
        self.settings = settings
        self.publish_outcomes = publish_outcomes
        self.publish_dead_letter = publish_dead_letter
        self.name = name
        self.now_fn = now_fn
        self.concurrency = concurrency or settings.smtp_connections
        self.limit = limit or settings.delivery_batch
        self.lease_seconds = lease_seconds or settings.delivery_lease_seconds
        self.idle_seconds = idle_seconds
        self.max_attempts = max_attempts
        self.jitter_fn = jitter_fn
        self.rates = rates or BroadcastRates()
        self.limits = FrequencyLimits(settings.max_marketing_per_day, settings.max_marketing_per_week)
        self._heartbeat = heartbeat
        # A caller may share its own event (set it when rows are queued) instead of calling wake().
        self._wake = wake_event if wake_event is not None else asyncio.Event()
        self._writer = OutcomeWriter(pool, name, now_fn)
        self._gate = asyncio.Semaphore(self.concurrency)
        # message id -> monotonic time until which this loop may still start sending it.
        self._held: dict[str, float] = {}
        self._stopping = False
        self.started = False

    def wake(self) -> None:
        """Claim again now instead of after the idle sleep."""
        self._wake.set()

    # --- leases ------------------------------------------------------------------------

    async def start(self) -> int:
        """Take back this loop's own leases left by its previous run; returns how many."""
        taken_back = await outbox.requeue_owned(self.pool, self.name, now=self.now_fn())
        if taken_back:
            metrics.DELIVERY_LEASES_RECLAIMED.labels("owner_restarted").inc(taken_back)
            log.warning("%s: re-queued %d messages its previous run held", self.name, taken_back)
        self.started = True
        return taken_back

    def _may_send(self, message_id: str) -> bool:
        return not self._stopping and self._holds(message_id)

    def _holds(self, message_id: str) -> bool:
        return time.monotonic() < self._held.get(message_id, 0.0)

    def _lease_deadline(self, since: float) -> float:
        return since + self.lease_seconds * (1 - _LEASE_SAFETY)

    async def renew(self) -> None:
        """Extend this loop's leases; a row whose lease was lost is not sent by this loop."""
        began = time.monotonic()
        before = {m for m, until in self._held.items() if until > 0}
        still = await outbox.renew_leases(
            self.pool, self.name, sorted(before), self.lease_seconds, now=self.now_fn()
        )
        deadline = self._lease_deadline(began)
        for message_id in before:
            if message_id in still:
                self._held[message_id] = max(self._held.get(message_id, 0.0), deadline)
            elif message_id in self._held:
                self._held[message_id] = 0.0
        if self._heartbeat is not None:
            await self._heartbeat()

    async def reap(self) -> int:
        """Re-queue every expired lease, whoever held it; returns how many."""
        reaped = await outbox.requeue_expired(self.pool, now=self.now_fn())
        if reaped:
            metrics.DELIVERY_LEASES_RECLAIMED.labels("expired").inc(reaped)
            log.warning("re-queued %d messages whose delivery loop stopped renewing", reaped)
        return reaped

    async def _renew_forever(self) -> None:
        interval = self.lease_seconds / _RENEWALS_PER_LEASE
        next_reap = 0.0
        while True:
            await asyncio.sleep(interval)
            try:
                await self.renew()
                if time.monotonic() >= next_reap:
                    await self.reap()
                    next_reap = time.monotonic() + self.lease_seconds / 2
            except asyncio.CancelledError:
                raise
            except Exception:
                # Unrenewed leases run out and this loop stops sending those rows: safe.
                log.exception("%s: lease renewal failed", self.name)

    # --- one batch ---------------------------------------------------------------------

    async def claim(self) -> list[OutboxRow]:
        """Lease the next due rows to this loop."""
        began = time.monotonic()
        rows = await outbox.claim(
            self.pool, self.name, self.limit, lease_seconds=self.lease_seconds, now=self.now_fn()
        )
        deadline = self._lease_deadline(began)
        for row in rows:
            self._held[row.message_id] = deadline
        return rows

    async def round(self) -> int:
        """Claim one batch and deliver it; returns how many rows were claimed."""
        if not self.started:
            await self.start()
        rows = await self.claim()
        if rows:
            await self.deliver(rows)
        return len(rows)

    async def deliver(self, rows: list[OutboxRow]) -> None:
        """Check, render and send claimed rows and record every outcome."""
        try:
            await self._deliver(rows)
        finally:
            for row in rows:
                self._held.pop(row.message_id, None)

    async def _deliver(self, rows: list[OutboxRow]) -> None:
        now = self.now_fn()
        # (row, outcome, status to report or None, dead-letter it)
        finished: list[tuple[OutboxRow, Outcome, DeliveryStatus | None, bool]] = []
        pending: list[Pending] = []
        for row in rows:
            stop = self._unsendable(row, now)
            if isinstance(stop, Pending):
                pending.append(stop)
            else:
                finished.append(stop)
        if pending:
            verdict = await check_batch(self.pool, pending, self.limits, self.rates, now)
            for p, outcome in verdict.stopped:
                status: DeliveryStatus | None = "failed" if outcome.status == "failed" else None
                finished.append((p.row, outcome, status, False))
            pending = verdict.send
        applied = await self._writer.write_all([o for _, o, _, _ in finished])
        for row, outcome, _, dead_letter in finished:
            if outcome.message_id in applied:
                metrics.DELIVERIES.labels(outcome.event).inc()
                if dead_letter:
                    await self._dead_letter(row, 0, outcome.detail or "")
        results = await asyncio.gather(*(self._send(p) for p in pending))
        reports = [
            _outcome_input(row, status, now, outcome.detail)
            for row, outcome, status, _ in finished
            if status is not None and outcome.message_id in applied
        ]
        reports.extend(r for r in results if r is not None)
        if reports:
            try:
                await self.publish_outcomes(reports)
            except asyncio.CancelledError:
                raise
            except Exception:
                # The rows already hold the outcomes; losing the feedback must not stop delivery.
                log.exception("could not publish %d delivery outcomes", len(reports))

    def _unsendable(
        self, row: OutboxRow, now: float
    ) -> Pending | tuple[OutboxRow, Outcome, DeliveryStatus | None, bool]:
        """The row ready for the checks, or its failure (and whether to dead-letter it)."""
        template = resolve_template(row, self.templates)
        if template is None:
            reason = f"unknown template {row.template!r}"
            return row, outcomes.failed(row.message_id, reason), "failed", True
        if not row.to_address:
            return row, outcomes.failed(row.message_id, "the person has no email address"), "failed", False
        try:
            suppression.recipient(row.to_address)
        except AddressError as exc:
            # State written before ingestion validated addresses: refused here, visibly.
            reason = f"invalid recipient {row.to_address!r}: {exc}"
            return row, outcomes.failed(row.message_id, reason, "invalid_recipient"), "failed", False
        give_up = self.settings.delivery_give_up_seconds
        if now - row.created_at > give_up:
            reason = f"gave up: not delivered {give_up:.0f}s after it was queued"
            if row.last_error:
                reason += f"; last error: {row.last_error}"
            return row, outcomes.failed(row.message_id, reason), "failed", True
        return Pending(row, template)

    async def _send(self, p: Pending) -> Delivery | None:
        row = p.row
        async with self._gate:
            if not self._may_send(row.message_id):
                if self._stopping and row.message_id in self._held:
                    await self._writer.write(outcomes.released(row.message_id, self.now_fn()))
                # A lost lease: the row is someone else's now, or the reaper's.
                return None
            now = self.now_fn()
            try:
                message = build_for_row(row, p.template, self.settings, now)
            except (TemplateRenderError, HeaderValueError, AddressError) as exc:
                if isinstance(exc, TemplateRenderError):
                    metrics.RENDER_FAILURES.inc()
                return await self._finish(row, outcomes.failed(row.message_id, str(exc)), "failed", dead_letter=0)
            if self.sender.health.down:
                await self._writer.write(outcomes.deferred(
                    row.message_id, now, f"the relay is unreachable: {self.sender.health.reason}"))
                return None
            started = time.perf_counter()
            try:
                response = await self.sender.send(message, lambda: self._holds(row.message_id))
            except SendAbandoned:
                # Frozen mid-exchange past the lease: the row is someone else's now.
                log.warning("%s: abandoned %s mid-exchange, its lease ran out", self.name, row.message_id)
                return None
            except TransientDeliveryError as exc:
                return await self._transient(row, exc)
            except PermanentDeliveryError as exc:
                return await self._permanent(row, exc)
            finally:
                metrics.SMTP_SECONDS.observe(time.perf_counter() - started)
        # The relay has the message: this write is shielded from cancellation, or the row
        # would be sent a second time.
        sent = outcomes.sent(row.message_id, response, template_version=p.template.version, subject=message.subject)
        if not await self._writer.write(sent):
            metrics.DELIVERY_RESENT.inc()
            log.warning("%s was accepted by the relay again after it was already sent", row.message_id)
            return None
        metrics.DELIVERIES.labels("sent").inc()
        return _outcome_input(row, "sent", self.now_fn(), None)

    async def _transient(self, row: OutboxRow, exc: TransientDeliveryError) -> Delivery | None:
        now = self.now_fn()
        if exc.relay_down:
            # Not the message's fault: back in the queue, the attempt not counted; the loop
            # waits for the relay and sends everything due as soon as it answers again.
            await self._writer.write(outcomes.deferred(row.message_id, now, f"the relay is unreachable: {exc}"))
            return None
        if row.attempts >= self.max_attempts:
            reason = f"gave up after {row.attempts} attempts; last error: {exc}"
            return await self._finish(row, outcomes.failed(row.message_id, reason), "failed", dead_letter=exc.code)
        delay = backoff(row.attempts, first=RETRY_BASE_SECONDS, cap=RETRY_CAP_SECONDS, jitter=self.jitter_fn())
        if await self._writer.write(outcomes.retry(row.message_id, str(exc), now + delay, delay)):
            metrics.DELIVERIES.labels("retry").inc()
        return None

    async def _permanent(self, row: OutboxRow, exc: PermanentDeliveryError) -> Delivery | None:
        reason = f"refused by the relay: {exc}"
        if exc.hard_bounce:
            # Customer.io's rule: a hard bounce suppresses the address, not the person.
            await suppression.suppress(
                self.pool, row.to_address or "", "hard_bounce",
                detail=f"{row.message_id}: {exc}", now=self.now_fn(),
            )
            outcome = outcomes.failed(row.message_id, reason, "bounced")
            status: DeliveryStatus = "bounced"
        else:
            outcome, status = outcomes.failed(row.message_id, reason), "failed"
        return await self._finish(row, outcome, status, dead_letter=exc.code)

    async def _finish(
        self, row: OutboxRow, outcome: Outcome, status: DeliveryStatus, *, dead_letter: int
    ) -> Delivery | None:
        if not await self._writer.write(outcome):
            return None
        metrics.DELIVERIES.labels(outcome.event).inc()
        await self._dead_letter(row, dead_letter, outcome.detail or "")
        return _outcome_input(row, status, self.now_fn(), outcome.detail)

    async def _dead_letter(self, row: OutboxRow, code: int, reason: str) -> None:
        if self.publish_dead_letter is None:
            return
        letter = DeadLetter(
            message_id=row.message_id, code=code, reason=reason, attempts=row.attempts,
            command=row.command,
        )
        try:
            await self.publish_dead_letter(letter)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("could not publish %s to the dead-letter topic", row.message_id)

    # --- running -----------------------------------------------------------------------

    async def _idle(self) -> None:
        wait = self.idle_seconds
        try:
            due = await outbox.next_due(self.pool)
        except Exception:
            due = None
        if due is not None:
            wait = min(wait, max(0.005, due - self.now_fn()))
        try:
            await asyncio.wait_for(self._wake.wait(), wait)
        except TimeoutError:
            pass

    async def run(self) -> None:
        """Deliver until cancelled. Errors are logged and retried; nothing claimed is stranded."""
        while not self.started:
            try:
                await self.start()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%s: cannot start yet; retrying", self.name)
                await asyncio.sleep(self.idle_seconds)
        renewer = asyncio.create_task(self._renew_forever())
        batches: set[asyncio.Task[None]] = set()
        try:
            while True:
                if len(batches) >= _BATCHES_IN_FLIGHT:
                    _, batches = await asyncio.wait(batches, return_when=asyncio.FIRST_COMPLETED)
                    continue
                if self.sender.health.down:
                    await self.sender.health.wait_until_up(self.sender.probe)
                self._wake.clear()
                try:
                    rows = await self.claim()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    # Usually the database is unreachable: back off and try again.
                    log.exception("%s: claim failed; retrying", self.name)
                    rows = []
                if rows:
                    task = asyncio.create_task(self.deliver(rows))
                    task.add_done_callback(_log_batch_failure)
                    batches.add(task)
                    continue
                await self._idle()
        except asyncio.CancelledError:
            self._stopping = True
            # Sends in flight end within the SMTP timeout and are recorded; the rest is released.
            await asyncio.shield(asyncio.gather(*batches, return_exceptions=True))
            raise
        finally:
            renewer.cancel()


def _log_batch_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        # Its rows keep their leases until they expire, then go back to the queue.
        log.error("a delivery batch failed", exc_info=task.exception())

