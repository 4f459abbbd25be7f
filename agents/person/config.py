"""EngineConfig: the decision core's few knobs, one frozen object passed to `decide`."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class EngineConfig(BaseModel):
    """Bounds that keep a person's record compact, and loop guards."""

    model_config = ConfigDict(frozen=True)

    # Recent events kept with their properties, by count and by encoded bytes (totals per
    # name and the exact condition indexes are kept regardless).
    history_limit: int = Field(default=100, ge=1)
    history_max_bytes: int = Field(default=64 * 1024, ge=1024)
    # An event bigger than this is kept in the recent history without its properties.
    event_max_bytes: int = Field(default=16 * 1024, ge=256)
    # Deduplication of producer event ids: this many ids, within this many days.
    dedup_limit: int = Field(default=1000, ge=0)
    dedup_window_days: int = Field(default=30, ge=1)
    # Message records kept for message conditions (`{message: T, opened: true}`): per template
    # and in all.
    messages_per_template: int = Field(default=20, ge=1)
    message_limit: int = Field(default=200, ge=1)
    # Customer.io's rules for anonymous activity: events up to this old when the person is
    # identified start campaigns (older ones only count for conditions), and events for the
    # anonymous id arriving this long after the identify are still passed on.
    anonymous_trigger_window: float = Field(default=72 * 3600.0, ge=0)
    anonymous_forward_seconds: float = Field(default=300.0, ge=0)
    # A `set` step can trigger attribute_changed campaigns and move segments, which can set
    # attributes again; this many rounds per decision at most.
    max_rounds: int = Field(default=8, ge=1)
    # Overdue timers caught up in one decision at most (a guard, never reached in practice).
    max_catch_up: int = Field(default=10_000, ge=1)
