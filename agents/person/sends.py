"""Queuing one email for the person: the send command, and the record message conditions read."""

from __future__ import annotations

from typing import Any

from agents.person.decision import Decision
from agents.person.history import remember_message
from agents.person.render_context import render_context
from schemas.commands import SendEmail, trusted
from schemas.person import MessageRecord


def queue_email(
    d: Decision,
    *,
    message_id: str,
    template: str,
    campaign_id: str,
    campaign_version: str | None,
    journey_id: str,
    step: str,
    at: float,
    reason: str,
    transactional: bool,
    campaign: dict[str, Any],
    event: dict[str, Any] | None = None,
    event_name: str | None = None,
) -> None:
    """Ask for `template` to be sent to the person now, and remember it in their messages."""
    state = d.state
    d.commands.append(
        trusted(
            SendEmail,
            message_id=message_id,
            person=state.person,
            to=state.email,
            template=template,
            campaign_id=campaign_id,
            campaign_version=campaign_version,
            journey_id=journey_id,
            step=step,
            decided_at=at,
            reason=reason,
            transactional=transactional,
            context=render_context(
                state, d.campaigns, template, campaign=campaign, event=event, event_name=event_name
            ),
        )
    )
    remember_message(
        state,
        MessageRecord(id=message_id, template=template, campaign=campaign_id, journey=journey_id, at=at),
        d.config,
    )
    d.touch("message", template)
