"""What a send command carries for its template: the person as they are at decision time.

Pure. Only the recent events the template's history helpers read travel with the command
(CampaignSet.template_needs), not the whole history.
"""

from __future__ import annotations

from typing import Any

from agents.person.campaign_set import CampaignSet
from agents.person.state_codec import events
from schemas.commands import RenderContext, trusted
from schemas.history import EventAggregate, EventRecord, History
from schemas.person import PersonState


def render_history(state: PersonState, campaigns: CampaignSet, template: str) -> History:
    """The totals and the recent events `template` may read, as the renderer takes them."""
    return history_of(state, campaigns.template_needs.get(template))


def history_of(state: PersonState, needs: frozenset[str] | None = None) -> History:
    """The person's totals and recent events (only those named in `needs`, if given)."""
    recent = [
        trusted(
            EventRecord,
            name=e.name, at=e.at, data=e.data, type=e.type, event_id=e.event_id
        )
        for e in events(state)
        if needs is None or e.name in needs
    ]
    aggregates = {
        name: trusted(EventAggregate, count=t.count, first_at=t.first_at, last_at=t.last_at)
        for name, t in state.totals.items()
    }
    return trusted(History, aggregates=aggregates, recent=recent)


def render_context(
    state: PersonState,
    campaigns: CampaignSet,
    template: str,
    *,
    campaign: dict[str, Any],
    event: dict[str, Any] | None = None,
    event_name: str | None = None,
) -> RenderContext:
    """Everything `template` may read, frozen now."""
    return trusted(
        RenderContext,
        customer=dict(state.attributes),
        event=dict(event or {}),
        event_name=event_name,
        campaign=campaign,
        history=render_history(state, campaigns, template),
    )
