"""What one delivery attempt did to its outbox row: pure values, written in batches by the outbox.

Each outcome names the row's next status and the timeline event that explains it. Only `sent`
applies to a row this loop no longer holds (the relay has the message, whoever re-queued it
meanwhile); every other outcome applies only while the loop still holds the row's lease.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

OutcomeStatus = Literal["sent", "queued", "failed"]


@dataclass(frozen=True)
class Outcome:
    """A row's next status, the event for its timeline, and what the row keeps of it."""

    message_id: str
    status: OutcomeStatus
    # Timeline event: sent, retry, failed, bounced, suppressed, unsubscribed, dropped,
    # invalid_recipient, deferred, released.
    event: str
    detail: str | None = None
    smtp_response: str | None = None
    error: str | None = None
    # Queued again: when it is next due (Unix seconds).
    due_at: float | None = None
    # The claim did not count as an attempt (deferred by a limit, released at shutdown).
    refund_attempt: bool = False
    # A send slot the broadcast rate limit reserved for the row (deferred by the limit).
    rate_slot: float | None = None
    # Sent: the version of the template it was rendered from, and its subject as sent.
    template_version: str | None = None
    subject: str | None = None


def sent(
    message_id: str, smtp_response: str, *, template_version: str | None = None,
    subject: str | None = None,
) -> Outcome:
    """The relay accepted the message (rendered from `template_version`, with `subject`)."""
    return Outcome(
        message_id, "sent", "sent", smtp_response, smtp_response=smtp_response,
        template_version=template_version or None, subject=subject,
    )


def retry(message_id: str, error: str, due_at: float, delay: float) -> Outcome:
    """A transient failure: queued again, due at `due_at`."""
    return Outcome(
        message_id, "queued", "retry", f"{error} (next attempt in {delay:.0f}s)",
        error=error, due_at=due_at,
    )


def failed(message_id: str, reason: str, event: str = "failed") -> Outcome:
    """Failed for good (`event`: failed, bounced, suppressed, unsubscribed, dropped, ...)."""
    if not event.isidentifier():
        raise ValueError(f"event {event!r} must be a plain word")
    return Outcome(message_id, "failed", event, reason, error=reason)


def deferred(message_id: str, until: float, reason: str, *, rate_slot: float | None = None) -> Outcome:
    """Not sent yet because of a limit: due again at `until`, the claim not counted."""
    return Outcome(
        message_id, "queued", "deferred", reason, due_at=until, refund_attempt=True,
        rate_slot=rate_slot,
    )


def released(message_id: str, now: float) -> Outcome:
    """Given back untried (the loop is stopping): due at once, the claim not counted."""
    return Outcome(
        message_id, "queued", "released", "the sender stopped before trying it",
        due_at=now, refund_attempt=True,
    )
