"""The delivery outbox as the delivery side reads it: one row per message, plus its timeline."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.commands import SendEmail

OutboxStatus = Literal["queued", "sending", "sent", "failed"]


class OutboxRow(BaseModel):
    """One message in the outbox. Times are Unix seconds, like everywhere else in Nudge."""

    model_config = ConfigDict(frozen=True)

    message_id: str
    person: str
    to_address: str | None
    template: str
    campaign_id: str | None = None
    campaign_version: str | None = None
    journey_id: str | None = None
    step: str | None = None
    command: SendEmail
    status: OutboxStatus
    # Counts claims, so it already includes the attempt in progress while `sending`.
    attempts: int
    next_attempt_at: float
    claimed_at: float | None = None
    last_error: str | None = None
    created_at: float
    updated_at: float
    sent_at: float | None = None
    smtp_response: str | None = None
    # The delivery loop holding the claim, and until when (a lease it renews while it sends).
    lease_owner: str | None = None
    lease_until: float | None = None
    # 0 transactional, 1 campaign, 2 broadcast: lower numbers are claimed first.
    priority: int = 1
    # A send slot the broadcast's rate limit reserved for this row (Unix seconds).
    rate_slot: float | None = None
    # Once sent: the version of the template it was rendered from, and the subject as sent.
    template_version: str | None = None
    subject: str | None = None


class MessageEvent(BaseModel):
    """One step of a message's timeline: queued, sending, retry, requeued, sent, failed, ..."""

    model_config = ConfigDict(frozen=True)

    status: str
    at: float
    detail: str | None = None


class MessageStatus(BaseModel):
    """Delivery status by message id: the outbox row and its timeline, oldest first."""

    model_config = ConfigDict(frozen=True)

    row: OutboxRow
    events: list[MessageEvent] = Field(default_factory=list)
