"""What a broadcast sends to one person: pure, from the person's stored state."""

from __future__ import annotations

from typing import Any

from agents.person.ids import broadcast_message_id
from schemas.broadcasts import ScanStart
from schemas.commands import RenderContext, SendEmail
from schemas.person import PersonState


def is_member(raw: dict[str, Any], segment: str) -> bool:
    """Whether a stored person (parsed JSON, not yet validated) is in the segment: the cheap test."""
    segments = raw.get("segments")
    return isinstance(segments, dict) and segment in segments


def broadcast_send(state: PersonState, start: ScanStart, now: float) -> SendEmail | None:
    """The email for a segment member, or None when they must not get it (suppressed, unsubscribed
    from marketing, no address)."""
    if start.template is None or state.suppressed or not state.email:
        return None
    if state.unsubscribed and not start.transactional:
        return None
    return SendEmail(
        message_id=broadcast_message_id(start.id, state.person),
        person=state.person,
        to=state.email,
        template=start.template,
        campaign_id=start.campaign,
        campaign_version=start.campaign_version,
        journey_id=f"broadcast:{start.id}",
        step="0",
        decided_at=now,
        reason=f"broadcast {start.id} of campaign {start.campaign} to segment {start.segment}",
        transactional=start.transactional,
        context=RenderContext(
            customer=dict(state.attributes),
            campaign={"id": start.campaign, "version": start.campaign_version, "broadcast": start.id},
            history=state.history,
        ),
    )
