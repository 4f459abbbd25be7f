"""The working context of one `decide` call: the state being changed and the commands so far."""

from __future__ import annotations

from dataclasses import dataclass, field

from agents.person.campaign_set import CampaignSet, Token
from agents.person.config import EngineConfig
from agents.person.history import Trimmed
from agents.person.timestamps import iso
from schemas.commands import Command
from schemas.inputs import Input, Track
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
    # What this decision touched that segments may read (attributes, events, segments,
    # messages); None means everything (a new person, a new campaign set, a merge).
    touched: set[Token] | None = field(default_factory=set)
    # The input being decided (its description is the provenance of what it caused).
    input: Input | None = None
    # What recording events had to drop to keep the record inside its byte bounds.
    trimmed: Trimmed = field(default_factory=Trimmed)

    @property
    def cause(self) -> str:
        """The input in a few words ("track app_login at 2026-03-02T09:00:00Z"), for provenance."""
        item = self.input
        if item is None:
            return ""
        at = iso(item.at)
        if isinstance(item, Track):
            return f"{item.type} {item.name} at {at}"
        return f"{item.kind} at {at}"

    def touch(self, kind: str, name: str) -> None:
        """Note that this decision changed something segments may read."""
        if self.touched is not None:
            self.touched.add((kind, name))
