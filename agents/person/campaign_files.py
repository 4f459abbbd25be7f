"""Campaigns as code: read `campaigns/*.yaml`, `segments/*.yaml` and `computed/*.yaml` from a folder.

This module reads files, so the pure decision core never imports it; the worker and the CLI do.

A file holds one definition (a mapping), a list of them, or a mapping with a `campaigns:`,
`segments:` or `computed:` list. Every problem is collected, so `nudge campaigns check` reports all at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from agents.person.campaign_walk import conditions, step_conditions, steps
from schemas.campaigns import (
    Campaign,
    CampaignFileError,
    ComputedAttribute,
    SegmentCondition,
    SegmentDefinition,
    SegmentTrigger,
    SendStep,
)

Model = TypeVar("Model", bound=BaseModel)


class CampaignDirError(CampaignFileError):
    """One or more files in a campaigns folder are invalid; `problems` lists each `file: path: what`."""

    def __init__(self, folder: str, problems: list[str]) -> None:
        self.file = folder
        self.problems = problems
        ValueError.__init__(self, "\n".join(problems))


@dataclass
class CampaignDir:
    """What a folder holds, and every problem found reading it."""

    campaigns: list[Campaign] = field(default_factory=list)
    segments: list[SegmentDefinition] = field(default_factory=list)
    computed: list[ComputedAttribute] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _yaml_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())


def _items(raw: Any, plural: str) -> tuple[list[Any], str] | None:
    """The definitions in a file and the path prefix of each (`campaigns[2]`), or None if none fit."""
    if isinstance(raw, list):
        return raw, ""
    if isinstance(raw, dict) and plural in raw and isinstance(raw[plural], list):
        return raw[plural], plural
    if isinstance(raw, dict):
        return [raw], "-"
    return None


def read_definitions(path: Path, model: type[Model], plural: str) -> tuple[list[Model], list[str]]:
    """Validate every definition in one file; return the good ones and one line per problem."""
    name = str(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        return [], [f"{name}: cannot read: {exc}"]
    except yaml.YAMLError as exc:
        return [], [f"{name}: not valid YAML: {exc}"]
    found = _items(raw, plural)
    if found is None:
        return [], [f"{name}: expected a mapping (one definition) or a list of them"]
    items, prefix = found
    good: list[Model] = []
    problems: list[str] = []
    for index, item in enumerate(items):
        try:
            good.append(model.model_validate(item))
        except ValidationError as exc:
            where = "" if prefix == "-" else f"{prefix}[{index}]"
            problems.extend(str(CampaignFileError.from_validation(name, exc, where)).splitlines())
    return good, problems


def cross_check(
    campaigns: list[Campaign], segments: list[SegmentDefinition], templates: set[str] | None
) -> list[str]:
    """References that point nowhere: unknown segments, unknown templates, duplicate ids."""
    problems: list[str] = []
    segment_ids = {s.id for s in segments}
    seen: set[str] = set()
    for campaign in campaigns:
        where = f"campaign {campaign.id}"
        if campaign.id in seen:
            problems.append(f"{where}: another campaign has the same id")
        seen.add(campaign.id)
        tops = [campaign.filter, campaign.exit, campaign.goal.condition if campaign.goal else None]
        tops += list(step_conditions(campaign))
        for step in steps(campaign.steps):
            if isinstance(step, SendStep) and templates is not None and step.send not in templates:
                problems.append(f"{where}: sends template {step.send!r}, which templates/ lacks")
        referenced = [c.segment for top in tops for c in conditions(top) if isinstance(c, SegmentCondition)]
        if isinstance(campaign.trigger, SegmentTrigger):
            referenced.append(campaign.trigger.segment)
        for segment in referenced:
            if segment not in segment_ids:
                problems.append(f"{where}: refers to segment {segment!r}, which segments/ does not define")
    seen_segments: set[str] = set()
    for definition in segments:
        if definition.id in seen_segments:
            problems.append(f"segment {definition.id}: another segment has the same id")
        seen_segments.add(definition.id)
        for c in conditions(definition.when):
            if isinstance(c, SegmentCondition) and c.segment not in segment_ids:
                problems.append(f"segment {definition.id}: refers to unknown segment {c.segment!r}")
    return problems


def read_campaign_dir(path: str | Path, templates: set[str] | None = None) -> CampaignDir:
    """Read `path/campaigns`, `path/segments` and `path/computed`, collecting problems; `templates` enables that check."""
    root = Path(path)
    result = CampaignDir()
    if not root.is_dir():
        result.problems.append(f"{root}: not a folder")
        return result
    for file in _yaml_files(root / "campaigns"):
        campaigns, problems = read_definitions(file, Campaign, "campaigns")
        result.campaigns.extend(campaigns)
        result.problems.extend(problems)
    for file in _yaml_files(root / "segments"):
        segments, problems = read_definitions(file, SegmentDefinition, "segments")
        result.segments.extend(segments)
        result.problems.extend(problems)
    for file in _yaml_files(root / "computed"):
        computed, problems = read_definitions(file, ComputedAttribute, "computed")
        result.computed.extend(computed)
        result.problems.extend(problems)
    result.problems.extend(cross_check(result.campaigns, result.segments, templates))
    seen: set[str] = set()
    for attribute in result.computed:
        if attribute.id in seen:
            result.problems.append(f"computed attribute {attribute.id}: another one has the same id")
        seen.add(attribute.id)
    return result


def load_campaign_dir(path: str | Path) -> tuple[list[Campaign], list[SegmentDefinition]]:
    """The campaigns and segments of a folder; raises CampaignDirError listing every problem."""
    result = read_campaign_dir(path)
    if result.problems:
        raise CampaignDirError(str(path), result.problems)
    return result.campaigns, result.segments


def load_definitions(path: str | Path) -> CampaignDir:
    """Everything a folder defines (campaigns, segments, computed attributes); raises
    CampaignDirError listing every problem."""
    result = read_campaign_dir(path)
    if result.problems:
        raise CampaignDirError(str(path), result.problems)
    return result
