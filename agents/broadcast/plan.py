"""Plan a scan: one `ScanStart` per partition (pure; publishing and bookkeeping live elsewhere)."""

from __future__ import annotations

import uuid

from agents.person.campaign_set import campaign_version
from schemas.broadcasts import ScanStart
from schemas.campaigns import Campaign, SendStep
from schemas.errors import InputError


class BroadcastError(InputError):
    """The broadcast cannot start as asked; the message says what to change."""


def broadcast_template(campaign: Campaign) -> str:
    """The template a broadcast of `campaign` sends: its single `send` step."""
    sends = [s for s in campaign.steps if isinstance(s, SendStep)]
    if len(sends) != 1 or len(campaign.steps) != 1:
        raise BroadcastError(
            f"campaign {campaign.id!r} can't be broadcast: a broadcast campaign has exactly one "
            f"step, a `send` (it has {len(campaign.steps)} step(s))"
        )
    return sends[0].send


def new_scan_id(kind: str) -> str:
    """A fresh, readable scan id (`b-1a2b3c4d5e6f` or `r-...`)."""
    return f"{kind[0]}-{uuid.uuid4().hex[:12]}"


def plan_broadcast(
    campaign: Campaign, segment: str, partitions: int, *, rate: float | None = None, scan_id: str | None = None
) -> list[ScanStart]:
    """One start per partition, sending the campaign's template to the segment's members.

    `rate` is the total sends per second, shared evenly by the partitions.
    """
    template = broadcast_template(campaign)
    scan_id = scan_id or new_scan_id("broadcast")
    return [
        ScanStart(
            id=scan_id, kind="broadcast", partition=p, campaign=campaign.id,
            campaign_version=campaign_version(campaign), template=template,
            transactional=campaign.transactional, segment=segment,
            rate=rate / partitions if rate else None,
        )
        for p in range(partitions)
    ]


def plan_reevaluation(
    partitions: int, *, reason: str = "", rate: float | None = None, scan_id: str | None = None
) -> list[ScanStart]:
    """One start per partition, asking every person to re-evaluate their segments."""
    scan_id = scan_id or new_scan_id("reevaluate")
    return [
        ScanStart(
            id=scan_id, kind="reevaluate", partition=p, reason=reason,
            rate=rate / partitions if rate else None,
        )
        for p in range(partitions)
    ]
