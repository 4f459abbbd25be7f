"""Partition scans: a broadcast (one template to a segment, once) or a segment backfill.

One `ScanStart` per partition goes on the `<app_id>-broadcasts` topic, which has the input
topic's partition count, so Faust gives partition p of it to the worker that owns partition p
of the people table: each worker scans only its own people.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class ScanStart(BaseModel):
    """Scan one partition's people: send `template` to members of `segment`, or re-evaluate all."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1)
    kind: Literal["broadcast", "reevaluate"]
    partition: int = Field(ge=0)
    campaign: str | None = None
    campaign_version: str | None = None
    template: str | None = None
    transactional: bool = False
    segment: str | None = None
    # Sends (or re-evaluation inputs) per second for this partition; None: as fast as it goes.
    rate: float | None = Field(default=None, gt=0)
    reason: str = ""


class ScanProgress(BaseModel):
    """One partition's progress, as PostgreSQL records it."""

    partition: int
    scanned: int = 0
    enqueued: int = 0
    done: bool = False


class BroadcastStatus(BaseModel):
    """A scan and its per-partition progress; for a broadcast, its messages too."""

    id: str
    kind: str
    campaign: str | None = None
    template: str | None = None
    segment: str | None = None
    # Total sends per second, held across every worker at delivery; None: as fast as it goes.
    rate: float | None = None
    partitions: list[ScanProgress] = Field(default_factory=list)
    # Messages the broadcast put in the outbox (members who may get it), then sent and failed
    # (suppressed, unsubscribed, refused by the relay); queued - sent - failed are on their way.
    queued: int = 0
    sent: int = 0
    failed: int = 0

    @property
    def done(self) -> bool:
        """Every partition finished."""
        return bool(self.partitions) and all(p.done for p in self.partitions)
