"""Campaign, segment and computed-attribute files checked with file, line and fix. Pure.

Each problem is reported once, at its first real cause: a definition that fails to validate is
not cross-checked, and what it names (its id, the templates it sends, the segments it reads) is
salvaged from the raw YAML, so a broken segment does not also make every campaign that reads it
"refer to a missing segment", nor the templates a broken campaign sends "unused".
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar, cast

import yaml
from pydantic import BaseModel, ValidationError

from agents.check.hints import did_you_mean, duration_fix, suggest
from agents.check.problems import Problem
from agents.check.yaml_lines import compose, line_of
from schemas import campaigns as language
from schemas.campaigns import (
    AllCondition,
    AnyCondition,
    AttributeChangedTrigger,
    AttributeCondition,
    BranchStep,
    Campaign,
    ComputedAttribute,
    Condition,
    DateOffset,
    DateTrigger,
    NotCondition,
    RandomStep,
    SegmentCondition,
    SegmentDefinition,
    SegmentTrigger,
    SendStep,
    SetStep,
    SplitStep,
    Step,
    WaitUntilStep,
    describe_error,
)

Model = TypeVar("Model", bound=BaseModel)
Path_ = tuple[int | str, ...]

PLURALS = {Campaign: "campaigns", SegmentDefinition: "segments", ComputedAttribute: "computed"}


def _vocabulary() -> list[str]:
    """Every key of the campaign language, as files spell them."""
    words: set[str] = set()
    for value in vars(language).values():
        if isinstance(value, type) and issubclass(value, BaseModel):
            for name, info in value.model_fields.items():
                words.add(info.alias or name)
    return sorted(words)


VOCABULARY = _vocabulary()
_NEEDS_ONE_OF = re.compile(r"needs one of the keys (.+)$")


@dataclass(frozen=True)
class Located(Generic[Model]):
    """A valid definition and where it is: its file, its YAML node and the path to it there."""

    model: Model
    file: str
    node: yaml.Node | None
    path: Path_

    def line(self, *more: int | str) -> int | None:
        """The line of this definition (or of a place inside it)."""
        return line_of(self.node, (*self.path, *more))


@dataclass
class Definitions:
    """What a folder's definition files hold, and their problems."""

    campaigns: list[Located[Campaign]] = field(default_factory=list)
    segments: list[Located[SegmentDefinition]] = field(default_factory=list)
    computed: list[Located[ComputedAttribute]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    # Salvaged from definitions that did not validate: kind -> ids, and what they referenced.
    broken_ids: dict[str, set[str]] = field(default_factory=lambda: {k: set() for k in PLURALS.values()})
    broken_sends: set[str] = field(default_factory=set)
    broken_segment_refs: set[str] = field(default_factory=set)


def _items(raw: Any, plural: str) -> list[tuple[Path_, Any]] | None:
    if isinstance(raw, list):
        return [((i,), item) for i, item in enumerate(raw)]
    if isinstance(raw, dict) and isinstance(raw.get(plural), list):
        return [((plural, i), item) for i, item in enumerate(raw[plural])]
    if isinstance(raw, dict):
        return [((), raw)]
    return None


def _raw_values(raw: Any, key: str) -> Iterator[str]:
    """Every string under `key` anywhere in raw YAML data."""
    if isinstance(raw, dict):
        for k, v in raw.items():
            if k == key and isinstance(v, str):
                yield v
            yield from _raw_values(v, key)
    elif isinstance(raw, list):
        for item in raw:
            yield from _raw_values(item, key)


def _raw_at(raw: Any, path: Iterable[int | str]) -> Any:
    for part in path:
        if isinstance(part, str) and (part.startswith("~") or part[:1].isupper() or "[" in part):
            continue
        key = {"if_": "if", "in_": "in", "not_": "not", "for_": "for", "from_": "from", "else_": "else"}.get(str(part), part)
        if isinstance(raw, list) and isinstance(key, int) and key < len(raw):
            raw = raw[key]
        elif isinstance(raw, dict) and key in raw:
            raw = raw[key]
        else:
            return None
    return raw


def _fix(error: dict[str, Any], item: Any) -> str:
    """The hint for one validation error: the key or value the author probably meant."""
    loc = tuple(error["loc"])
    if error["type"] == "extra_forbidden":
        return suggest(str(loc[-1]), VOCABULARY)
    needs = _NEEDS_ONE_OF.search(str(error["msg"]))
    if needs:
        keys = [k.strip() for k in needs[1].split(",")]
        given = _raw_at(item, loc)
        if isinstance(given, dict):
            for key in given:
                meant = did_you_mean(str(key), keys)
                if meant is not None:
                    return f" ({str(key)!r}: did you mean {meant!r}?)"
        return ""
    if "is not a duration" in str(error["msg"]):
        fixed = duration_fix(error.get("input"))
        return f" (write {fixed!r})" if fixed else ""
    return ""


def read_file(
    name: str, text: str, model: type[Model], into: Definitions
) -> list[Located[Model]]:
    """Validate every definition in one file; problems go to `into`, with their lines."""
    plural = PLURALS[model]
    try:
        raw = yaml.safe_load(text)
        root = compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        into.problems.append(Problem(name, line, f"not valid YAML: {getattr(exc, 'problem', None) or exc}"))
        return []
    items = _items(raw, plural)
    if items is None:
        into.problems.append(Problem(name, 1, "expected a mapping (one definition) or a list of them"))
        return []
    good: list[Located[Model]] = []
    for path, item in items:
        try:
            good.append(Located(model.model_validate(item), name, root, path))
        except ValidationError as exc:
            _broken(item, plural, into)
            seen: set[str] = set()
            for error in map(dict, exc.errors()):
                text_line = describe_error(error, _prefix(path))
                if text_line in seen:
                    continue
                seen.add(text_line)
                line = line_of(root, (*path, *cast(tuple[str | int, ...], error["loc"])))
                fix = _fix(error, item)
                if fix and text_line.endswith(" (check the spelling)"):
                    text_line = text_line.removesuffix(" (check the spelling)")
                into.problems.append(Problem(name, line, text_line + fix))
    return good


def _prefix(path: Path_) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else str(p) for p in path)


def _broken(item: Any, plural: str, into: Definitions) -> None:
    if isinstance(item, dict) and isinstance(item.get("id"), str):
        into.broken_ids[plural].add(item["id"])
    into.broken_sends.update(_raw_values(item, "send"))
    into.broken_segment_refs.update(_raw_values(item, "segment"))


# --- cross references --------------------------------------------------------------------


def located_steps(steps: list[Step], path: Path_) -> Iterator[tuple[Path_, Step]]:
    """Every step of a step tree with its path in the file (`steps, 2, branch, then, 0`)."""
    for index, step in enumerate(steps):
        here = (*path, index)
        yield here, step
        if isinstance(step, BranchStep):
            yield from located_steps(step.branch.then, (*here, "branch", "then"))
            yield from located_steps(step.branch.else_, (*here, "branch", "else"))
        elif isinstance(step, SplitStep):
            for arm, case in enumerate(step.split):
                yield from located_steps(case.then, (*here, "split", arm, "then" if case.if_ is not None else "else"))
        elif isinstance(step, RandomStep):
            for arm, cohort in enumerate(step.random):
                yield from located_steps(cohort.steps, (*here, "random", arm, "steps"))


def located_conditions(condition: Condition | None, path: Path_) -> Iterator[tuple[Path_, Condition]]:
    """A condition and every condition inside it, with their paths in the file."""
    if condition is None:
        return
    yield path, condition
    if isinstance(condition, AllCondition):
        for i, child in enumerate(condition.all):
            yield from located_conditions(child, (*path, "all", i))
    elif isinstance(condition, AnyCondition):
        for i, child in enumerate(condition.any):
            yield from located_conditions(child, (*path, "any", i))
    elif isinstance(condition, NotCondition):
        yield from located_conditions(condition.not_, (*path, "not"))


def campaign_conditions(campaign: Campaign) -> Iterator[tuple[Path_, Condition]]:
    """Every condition of a campaign (filter, exit, goal, branch, split, wait_until) with its path."""
    yield from located_conditions(campaign.filter, ("filter",))
    yield from located_conditions(campaign.exit, ("exit",))
    if campaign.goal is not None:
        yield from located_conditions(campaign.goal.condition, ("goal",))
    for path, step in located_steps(campaign.steps, ("steps",)):
        if isinstance(step, BranchStep):
            yield from located_conditions(step.branch.if_, (*path, "branch", "if"))
        elif isinstance(step, SplitStep):
            for arm, case in enumerate(step.split):
                yield from located_conditions(case.if_, (*path, "split", arm, "if"))
        elif isinstance(step, WaitUntilStep):
            yield from located_conditions(step.wait_until.condition, (*path, "wait_until"))


def sent_templates(campaign: Campaign) -> Iterator[tuple[Path_, str]]:
    """Each `send` step's template with the step's path."""
    for path, step in located_steps(campaign.steps, ("steps",)):
        if isinstance(step, SendStep):
            yield (*path, "send"), step.send


def cross_check(found: Definitions, templates: set[str] | None) -> list[Problem]:
    """Duplicate ids, sends of missing templates, references to missing segments."""
    problems: list[Problem] = []
    segment_ids = {s.model.id for s in found.segments} | found.broken_ids["segments"]
    for kind, items in (("campaign", found.campaigns), ("segment", found.segments), ("computed attribute", found.computed)):
        first: dict[str, Located[Any]] = {}
        for item in items:
            other = first.setdefault(item.model.id, item)
            if other is not item:
                problems.append(Problem(
                    item.file, item.line("id"),
                    f"{kind} id {item.model.id!r} is already used by {other.file}:{other.line('id')}; rename one",
                ))
    for item in found.campaigns:
        campaign = item.model
        if templates is not None:
            for path, template in sent_templates(campaign):
                if template not in templates:
                    problems.append(Problem(
                        item.file, item.line(*path),
                        f"campaign {campaign.id} sends template {template!r}, which templates/ lacks"
                        + suggest(template, templates) + f"; create templates/{template}.html",
                    ))
        references = [(path, c.segment) for path, c in campaign_conditions(campaign) if isinstance(c, SegmentCondition)]
        if isinstance(campaign.trigger, SegmentTrigger):
            references.append((("trigger", "segment"), campaign.trigger.segment))
        for path, segment in references:
            if segment not in segment_ids:
                problems.append(Problem(
                    item.file, item.line(*path),
                    f"campaign {campaign.id} refers to segment {segment!r}, which segments/ does not define"
                    + suggest(segment, segment_ids) + f"; define it in segments/{segment}.yaml",
                ))
    for item in found.segments:
        for path, c in located_conditions(item.model.when, ("when",)):
            if isinstance(c, SegmentCondition) and c.segment not in segment_ids:
                problems.append(Problem(
                    item.file, item.line(*path, "segment"),
                    f"segment {item.model.id} refers to segment {c.segment!r}, which segments/ does not define"
                    + suggest(c.segment, segment_ids),
                ))
    return problems


def unused_segments(found: Definitions) -> list[Problem]:
    """Segments no campaign triggers on or reads, and no other segment reads (warnings)."""
    used = set(found.broken_segment_refs)
    for item in found.campaigns:
        used.update(c.segment for _, c in campaign_conditions(item.model) if isinstance(c, SegmentCondition))
        if isinstance(item.model.trigger, SegmentTrigger):
            used.add(item.model.trigger.segment)
    for segment in found.segments:
        used.update(c.segment for _, c in located_conditions(segment.model.when, ()) if isinstance(c, SegmentCondition))
    return [
        Problem(
            item.file, item.line("id"),
            f"no campaign or segment uses segment {item.model.id!r} (fine if you only broadcast to it)",
            "warning",
        )
        for item in found.segments
        if item.model.id not in used
    ]


def attribute_references(found: Definitions) -> Iterator[tuple[Located[Any], Path_, str]]:
    """Every attribute a campaign or segment reads (conditions, date and change triggers), with
    where it is read."""
    for item in found.campaigns:
        campaign = item.model
        for path, c in campaign_conditions(campaign):
            if isinstance(c, AttributeCondition):
                yield item, (*path, "attribute"), c.attribute
        trigger = campaign.trigger
        if isinstance(trigger, DateTrigger):
            spec = trigger.date
            if isinstance(spec, DateOffset):
                yield item, ("trigger", "date", "attribute"), spec.attribute
            else:
                yield item, ("trigger", "date", "from"), spec.from_
                yield item, ("trigger", "date", "to"), spec.to
        elif isinstance(trigger, AttributeChangedTrigger):
            yield item, ("trigger", "attribute_changed"), trigger.attribute_changed
    for segment in found.segments:
        for path, c in located_conditions(segment.model.when, ("when",)):
            if isinstance(c, AttributeCondition):
                yield segment, (*path, "attribute"), c.attribute


def attribute_typos(found: Definitions, declared: set[str]) -> list[Problem]:
    """Attributes read that are probably misspelt (warnings): with `declared` (events.yaml's
    attributes), any not declared; without, one read in a single place that is a close match of
    another read elsewhere (`trial_end_at` beside `trial_ends_at`)."""
    references = list(attribute_references(found))
    written = {c.model.id for c in found.computed} | {"email", "timezone"}
    for item in found.campaigns:
        for _, step in located_steps(item.model.steps, ()):
            if isinstance(step, SetStep):
                written.update(step.set)
    counts: dict[str, int] = {}
    for _, _, name in references:
        counts[name] = counts.get(name, 0) + 1
    first: dict[str, str] = {}
    for item, path, name in references:
        first.setdefault(name, f"{item.file}:{item.line(*path)}")
    problems, pairs = [], set()
    for item, path, name in references:
        root = name.split(".")[0]
        if declared:
            if root in declared or root in written:
                continue
            message = f"attribute {name!r} is not declared in events.yaml{suggest(root, declared | written)}"
        else:
            others = [n for n in counts if n != name and counts[n] >= counts[name]]
            meant = did_you_mean(name, others) if counts[name] == 1 else None
            pair = frozenset((name, meant))
            if meant is None or meant in written or name in written or pair in pairs:
                continue
            pairs.add(pair)
            message = (
                f"attribute {name!r} is read only here and {meant!r} at {first[meant]}: is one of them "
                "misspelt? (declare your attributes under `attributes:` in events.yaml to check exactly)"
            )
        problems.append(Problem(item.file, item.line(*path), message, "warning"))
    return problems
