"""EngineConfig: the decision core's few knobs, one frozen object passed to `decide`."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class EngineConfig(BaseModel):
    """Bounds that keep a person's record compact, and loop guards."""

    model_config = ConfigDict(frozen=True)

    # Recent events kept with their properties (aggregates per name are kept regardless).
    history_limit: int = Field(default=100, ge=1)
    # Producer event ids remembered for deduplication.
    seen_event_ids_limit: int = Field(default=500, ge=0)
    # Message records kept for message conditions (`{message: T, opened: true}`).
    message_limit: int = Field(default=50, ge=1)
    # A `set` step can trigger attribute_changed campaigns and move segments, which can set
    # attributes again; this many rounds per decision at most.
    max_rounds: int = Field(default=8, ge=1)
    # Overdue timers caught up in one decision at most (a guard, never reached in practice).
    max_catch_up: int = Field(default=10_000, ge=1)
