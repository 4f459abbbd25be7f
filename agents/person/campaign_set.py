"""CampaignSet: the campaigns and segments a decision sees, with every known older version."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field

from schemas.campaigns import (
    AttributeChangedTrigger,
    Campaign,
    ComputedAttribute,
    DateTrigger,
    EventTrigger,
    SegmentDefinition,
    SegmentTrigger,
)


class CampaignSetError(ValueError):
    """Two campaigns or segments share an id; rename one of them."""


def campaign_version(campaign: Campaign) -> str:
    """Short hash of the campaign's canonical JSON (name and description left out)."""
    body = campaign.model_dump(
        mode="json", by_alias=True, exclude_defaults=True, exclude={"name", "description"}
    )
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:8]


@dataclass(frozen=True)
class VersionedCampaign:
    """A campaign with its version."""

    campaign: Campaign
    version: str

    @property
    def id(self) -> str:
        return self.campaign.id


@dataclass(frozen=True)
class CampaignSet:
    """Current campaigns by id, every version by (id, version), segments by id.

    Build with `CampaignSet.build`; the trigger indexes are computed once there.
    """

    current: dict[str, VersionedCampaign] = field(default_factory=dict)
    versions: dict[tuple[str, str], Campaign] = field(default_factory=dict)
    segments: dict[str, SegmentDefinition] = field(default_factory=dict)
    by_event: dict[str, list[VersionedCampaign]] = field(default_factory=dict)
    by_attribute: dict[str, list[VersionedCampaign]] = field(default_factory=dict)
    by_segment: dict[str, list[VersionedCampaign]] = field(default_factory=dict)
    dated: list[VersionedCampaign] = field(default_factory=list)
    computed: dict[str, ComputedAttribute] = field(default_factory=dict)
    computed_by_event: dict[str, list[ComputedAttribute]] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        current: Iterable[Campaign],
        previous_versions: Iterable[Campaign] = (),
        segments: Iterable[SegmentDefinition] = (),
        computed: Iterable[ComputedAttribute] = (),
    ) -> "CampaignSet":
        """Index `current` (ids must be unique), remember `previous_versions` for journeys in flight."""
        now: dict[str, VersionedCampaign] = {}
        versions: dict[tuple[str, str], Campaign] = {}
        for campaign in previous_versions:
            versions[(campaign.id, campaign_version(campaign))] = campaign
        for campaign in current:
            if campaign.id in now:
                raise CampaignSetError(f"two campaigns have the id {campaign.id!r}")
            entry = VersionedCampaign(campaign, campaign_version(campaign))
            now[campaign.id] = entry
            versions[(campaign.id, entry.version)] = campaign
        by_segment_id: dict[str, SegmentDefinition] = {}
        for segment in segments:
            if segment.id in by_segment_id:
                raise CampaignSetError(f"two segments have the id {segment.id!r}")
            by_segment_id[segment.id] = segment
        by_event: dict[str, list[VersionedCampaign]] = {}
        by_attribute: dict[str, list[VersionedCampaign]] = {}
        by_segment: dict[str, list[VersionedCampaign]] = {}
        dated: list[VersionedCampaign] = []
        for entry in now.values():
            trigger = entry.campaign.trigger
            if isinstance(trigger, EventTrigger):
                by_event.setdefault(trigger.event, []).append(entry)
            elif isinstance(trigger, AttributeChangedTrigger):
                by_attribute.setdefault(trigger.attribute_changed, []).append(entry)
            elif isinstance(trigger, SegmentTrigger):
                by_segment.setdefault(trigger.segment, []).append(entry)
            elif isinstance(trigger, DateTrigger):
                dated.append(entry)
        by_computed_id: dict[str, ComputedAttribute] = {}
        computed_by_event: dict[str, list[ComputedAttribute]] = {}
        for attribute in computed:
            if attribute.id in by_computed_id:
                raise CampaignSetError(f"two computed attributes have the id {attribute.id!r}")
            by_computed_id[attribute.id] = attribute
            computed_by_event.setdefault(attribute.event, []).append(attribute)
        return cls(
            now, versions, by_segment_id, by_event, by_attribute, by_segment, dated,
            by_computed_id, computed_by_event,
        )

    def get(self, campaign_id: str, version: str) -> Campaign | None:
        """That exact version, if known."""
        return self.versions.get((campaign_id, version))
