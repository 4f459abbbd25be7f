"""The working context of one `decide` call: the state being changed and the commands so far."""

from __future__ import annotations

from dataclasses import dataclass, field

from agents.person.campaign_set import CampaignSet
from agents.person.config import EngineConfig
from schemas.commands import Command
from schemas.history import EventAggregate, History
from schemas.person import PersonState


@dataclass
class Decision:
    """Mutable while one decision runs; `decide` hands back `state` and `commands`."""

    state: PersonState
    campaigns: CampaignSet
    config: EngineConfig
    commands: list[Command] = field(default_factory=list)
    # Attributes a `set` step changed in this round: they may trigger attribute_changed.
    changed: dict[str, tuple[object, object]] = field(default_factory=dict)
    # Segment id -> next instant its membership could flip (found while evaluating).
    segment_flips: dict[str, float] = field(default_factory=dict)


def copy_history(history: History) -> History:
    """A copy that later changes to `history` cannot reach (event records are frozen)."""
    return History(
        aggregates={k: EventAggregate(**v.__dict__) for k, v in history.aggregates.items()},
        recent=list(history.recent),
    )


def copy_state(state: PersonState) -> PersonState:
    """A copy deep enough for the engine to change freely: containers are new, frozen leaves shared."""
    return state.model_copy(
        update={
            "attributes": dict(state.attributes),
            "history": copy_history(state.history),
            "seen_event_ids": list(state.seen_event_ids),
            "segments": dict(state.segments),
            "journeys": [j.model_copy(update={"position": list(j.position)}) for j in state.journeys],
            "entries": {k: v.model_copy() for k, v in state.entries.items()},
            "date_moments": dict(state.date_moments),
            "messages": [
                m.model_copy(update={"statuses": list(m.statuses)}) for m in state.messages
            ],
            "timers": dict(state.timers),
            "devices": dict(state.devices),
            "computed": dict(state.computed),
            "merged_ids": list(state.merged_ids),
        }
    )
