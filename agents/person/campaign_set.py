"""CampaignSet: the campaigns and segments a decision sees, with every known older version.

Built once per load, it also indexes what the definitions read, so a decision does only the
work an input can affect: campaigns by trigger, segments by the attributes, events, segments
and messages they read, the exact event indexes the conditions need, and which recent events
each template's helpers read.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field

from agents.person.campaign_walk import conditions, step_conditions
from agents.person.event_index import MatchSpec, specs_for
from schemas.campaigns import (
    AttributeChangedTrigger,
    AttributeCondition,
    Campaign,
    ComputedAttribute,
    Condition,
    DateOffset,
    DateTrigger,
    EventCondition,
    EventTrigger,
    InactivityCondition,
    MessageCondition,
    SegmentCondition,
    SegmentDefinition,
    SegmentTrigger,
)
from schemas.errors import ConfigurationError

# What a segment can read: ("attribute", name), ("event", name), ("segment", id), ("message", template).
Token = tuple[str, str]
# Which recent events a template's history helpers read: a set of names, or None for all.
TemplateNeeds = frozenset[str] | None


class CampaignSetError(ConfigurationError, ValueError):
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
    # Exact event indexes the loaded conditions need, all and by event name.
    match_specs: tuple[MatchSpec, ...] = ()
    specs_by_event: dict[str, list[MatchSpec]] = field(default_factory=dict)
    # Condition-defined segments by what they read; a segment whose flip time comes also
    # re-evaluates. Manual segments are never evaluated.
    segments_by_token: dict[Token, list[str]] = field(default_factory=dict)
    # Attributes any date trigger reads: only their change re-arms the dates.
    date_attributes: frozenset[str] = frozenset()
    template_needs: dict[str, TemplateNeeds] = field(default_factory=dict)
    # Changes whenever anything above does: a person last evaluated with another fingerprint
    # gets every segment, date and index evaluated afresh.
    fingerprint: str = ""

    @classmethod
    def build(
        cls,
        current: Iterable[Campaign],
        previous_versions: Iterable[Campaign] = (),
        segments: Iterable[SegmentDefinition] = (),
        computed: Iterable[ComputedAttribute] = (),
        template_needs: dict[str, TemplateNeeds] | None = None,
    ) -> CampaignSet:
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
        specs = tuple(specs_for(_tops(versions.values(), by_segment_id.values())))
        specs_by_event: dict[str, list[MatchSpec]] = {}
        for spec in specs:
            specs_by_event.setdefault(spec.event, []).append(spec)
        segments_by_token: dict[Token, list[str]] = {}
        for segment in by_segment_id.values():
            for token in sorted(_reads(segment.when)):
                segments_by_token.setdefault(token, []).append(segment.id)
        date_attributes = frozenset(
            name
            for entry in dated
            for name in _date_attributes(entry.campaign.trigger)  # type: ignore[arg-type]
        )
        needs = dict(template_needs or {})
        body = {
            "versions": sorted(f"{k[0]}@{k[1]}" for k in versions),
            "current": sorted(f"{e.id}@{e.version}" for e in now.values()),
            "segments": [s.model_dump(mode="json", by_alias=True) for s in by_segment_id.values()],
            "computed": [c.model_dump(mode="json", by_alias=True) for c in by_computed_id.values()],
            "needs": {k: sorted(v) if v is not None else None for k, v in sorted(needs.items())},
        }
        fingerprint = hashlib.sha256(
            json.dumps(body, sort_keys=True, default=str).encode()
        ).hexdigest()[:16]
        return cls(
            now, versions, by_segment_id, by_event, by_attribute, by_segment, dated,
            by_computed_id, computed_by_event, specs, specs_by_event, segments_by_token,
            date_attributes, needs, fingerprint,
        )

    def get(self, campaign_id: str, version: str) -> Campaign | None:
        """That exact version, if known."""
        return self.versions.get((campaign_id, version))

    def segments_reading(self, tokens: Iterable[Token]) -> list[str]:
        """The condition segments that read any of `tokens`, in definition order."""
        wanted = {s for token in tokens for s in self.segments_by_token.get(token, ())}
        return [s for s in self.segments if s in wanted]


def _tops(
    campaigns: Iterable[Campaign], segments: Iterable[SegmentDefinition]
) -> Iterable[tuple[Condition | None, bool]]:
    """Every top-level condition, with whether it counts only events after entry."""
    for campaign in campaigns:
        yield campaign.filter, False
        yield campaign.exit, True
        yield (campaign.goal.condition if campaign.goal else None), True
        for condition in step_conditions(campaign):
            yield condition, False
    for segment in segments:
        yield segment.when, False


def _reads(condition: Condition | None) -> set[Token]:
    """What a condition reads, as tokens an input can touch."""
    tokens: set[Token] = set()
    for c in conditions(condition):
        if isinstance(c, AttributeCondition):
            tokens.add(("attribute", c.attribute.split(".")[0]))
        elif isinstance(c, EventCondition):
            tokens.add(("event", c.event))
        elif isinstance(c, InactivityCondition):
            tokens.add(("event", c.not_performed))
        elif isinstance(c, SegmentCondition):
            tokens.add(("segment", c.segment))
        elif isinstance(c, MessageCondition):
            tokens.add(("message", c.message))
    return tokens


def _date_attributes(trigger: DateTrigger) -> tuple[str, ...]:
    spec = trigger.date
    if isinstance(spec, DateOffset):
        return (spec.attribute,)
    return (spec.from_, spec.to)
