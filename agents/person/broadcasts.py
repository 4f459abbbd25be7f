"""A broadcast reaching one person: the send it makes, recorded like any campaign send."""

from __future__ import annotations

from agents.person.decision import Decision
from agents.person.ids import broadcast_message_id
from agents.person.sends import queue_email
from schemas.inputs import BroadcastSend


def send_broadcast(d: Decision, input: BroadcastSend, now: float) -> None:
    """Queue the broadcast's email for this person unless they must not get it.

    Not a segment member (when the broadcast names one), suppressed, without an address, or
    unsubscribed from marketing: nothing is sent. The message id is hash(broadcast, person), so
    a rescan after a crash re-emits an id the outbox already has.
    """
    state = d.state
    if input.segment is not None and input.segment not in state.segments:
        return
    if state.suppressed or not state.email:
        return
    if state.unsubscribed and not input.transactional:
        return
    mid = broadcast_message_id(input.broadcast_id, state.person)
    if any(m.id == mid for m in state.messages):
        return  # already queued: a broadcast sends once per person
    queue_email(
        d, message_id=mid, template=input.template, campaign_id=input.campaign_id,
        campaign_version=input.campaign_version, journey_id=f"broadcast:{input.broadcast_id}",
        step="0", at=now,
        reason=(
            f"broadcast {input.broadcast_id} of campaign {input.campaign_id}"
            + (f" to segment {input.segment}" if input.segment else "")
        ),
        transactional=input.transactional,
        campaign={
            "id": input.campaign_id,
            "version": input.campaign_version,
            "broadcast": input.broadcast_id,
        },
    )
