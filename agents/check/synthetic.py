"""The synthetic person `nudge campaigns check` renders templates for. Pure.

Built from what the definitions and `events.yaml` mention: every attribute a condition, trigger,
`set` step, time window or computed attribute reads (with a value of the type it is compared
with), `events.yaml`'s declared attributes, and one event of each name with its properties. A
template that renders for this person uses only names the project knows; a name no definition
mentions is one no person is known to have.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from agents.check.definitions import campaign_conditions, located_conditions, located_steps
from agents.check.event_schema import EventSchema
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
    SegmentDefinition,
    SegmentTrigger,
    SetStep,
    TimeWindowStep,
)
from schemas.commands import RenderContext
from schemas.history import EventAggregate, EventRecord, History

# Attributes every person may have: the address, and the zone time windows read.
ALWAYS = {"email": "string"}
TIMESTAMP = "timestamp"


@dataclass
class Vocabulary:
    """Attribute and event names the project mentions, with a type or sample value for each."""

    # Attribute -> a sample value (its type's, or the value a condition compares it with).
    attributes: dict[str, Any] = field(default_factory=dict)
    # Event -> property -> sample value.
    events: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Events whose every property is known (declared in events.yaml).
    declared_events: set[str] = field(default_factory=set)

    def knows_attribute(self, name: str) -> bool:
        """Whether `customer.<name>` is an attribute the project mentions (dotted ones too)."""
        return name in self.attributes or any(a.startswith(name + ".") for a in self.attributes)


_SAMPLES = {
    "string": "sample", "number": 1.5, "integer": 1, "boolean": True, "array": ["sample"],
    "object": {}, "null": None, "any": "sample",
}


def _sample_of_types(types: Iterable[str], now: float, name: str) -> Any:
    kinds = sorted(types)
    if "integer" in kinds and (name.endswith("_at") or name.endswith("_date")):
        return int(now) - 86400
    for kind in ("string", "integer", "number", "boolean", "array", "object", "any", "null"):
        if kind in kinds:
            return _SAMPLES[kind]
    return "sample"


def _attribute_sample(condition: AttributeCondition, now: float) -> Any:
    for op, operand in condition.operators():
        if op in ("older_than", "within_last", "within_next"):
            return int(now) - 86400
        if op in ("eq", "ne", "gt", "gte", "lt", "lte", "contains") and operand is not None:
            return operand
        if op == "in_" and operand:
            return operand[0]
    return "sample"


def _where_samples(where: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, expected in where.items():
        if isinstance(expected, dict) and expected:
            operand = next(iter(expected.values()))
            out[key] = operand[0] if isinstance(operand, list) and operand else operand
        else:
            out[key] = expected
    return out


def _conditions_of(campaigns: list[Campaign], segments: list[SegmentDefinition]) -> Iterable[Condition]:
    for campaign in campaigns:
        for _, condition in campaign_conditions(campaign):
            yield condition
    for segment in segments:
        for _, condition in located_conditions(segment.when, ()):
            yield condition


def vocabulary(
    campaigns: list[Campaign], segments: list[SegmentDefinition], computed: list[ComputedAttribute],
    schema: EventSchema | None, now: float,
) -> Vocabulary:
    """Every attribute and event the definitions and events.yaml mention."""
    vocab = Vocabulary(attributes=dict(ALWAYS))
    vocab.attributes["email"] = "person@example.com"

    def event(name: str, data: dict[str, Any] | None = None) -> None:
        properties = vocab.events.setdefault(name, {})
        for key, value in (data or {}).items():
            properties.setdefault(key, value)

    if schema is not None:
        for name, types in schema.attributes.items():
            vocab.attributes[name] = _sample_of_types(types, now, name)
        for name, properties in schema.events.items():
            event(name, {p: _sample_of_types(t, now, p) for p, t in properties.items()})
            vocab.declared_events.add(name)
    for condition in _conditions_of(campaigns, segments):
        if isinstance(condition, AttributeCondition):
            vocab.attributes.setdefault(condition.attribute, _attribute_sample(condition, now))
        elif isinstance(condition, EventCondition):
            event(condition.event, _where_samples(condition.where))
        elif isinstance(condition, InactivityCondition):
            event(condition.not_performed, _where_samples(condition.where))
    for campaign in campaigns:
        trigger = campaign.trigger
        if isinstance(trigger, EventTrigger):
            event(trigger.event, _where_samples(trigger.where))
        elif isinstance(trigger, AttributeChangedTrigger):
            vocab.attributes.setdefault(trigger.attribute_changed, "sample")
        elif isinstance(trigger, DateTrigger):
            spec = trigger.date
            names = [spec.attribute] if isinstance(spec, DateOffset) else [spec.from_, spec.to]
            for name in names:
                vocab.attributes.setdefault(name, int(now) + 86400)
        for _, step in located_steps(campaign.steps, ()):
            if isinstance(step, SetStep):
                for name, value in step.set.items():
                    vocab.attributes.setdefault(name, value if value is not None else "sample")
            elif isinstance(step, TimeWindowStep):
                vocab.attributes.setdefault("timezone", step.time_window.fallback_timezone)
    for attribute in computed:
        sample: Any = 1 if attribute.aggregate != "last" else "sample"
        vocab.attributes.setdefault(attribute.id, sample)
        event(attribute.event, {attribute.property: 1} if attribute.property else {})
    return vocab


def trigger_data(campaign: Campaign | None, vocab: Vocabulary) -> tuple[str | None, dict[str, Any] | None]:
    """What `event_name` and `event` hold in this campaign's emails; None data: not known."""
    if campaign is None:
        return None, None
    trigger = campaign.trigger
    if isinstance(trigger, EventTrigger):
        data = dict(vocab.events.get(trigger.event, {}))
        return trigger.event, data if trigger.event in vocab.declared_events else None
    if isinstance(trigger, SegmentTrigger):
        return None, {"segment": trigger.segment}
    if isinstance(trigger, AttributeChangedTrigger):
        return None, {"attribute": trigger.attribute_changed, "from": "sample", "to": "sample"}
    if isinstance(trigger, DateTrigger):
        return None, {"date": trigger.date.model_dump(by_alias=True, mode="json"), "moment": 0}
    return None, {}


class _AnyProperty(dict):  # type: ignore[type-arg]
    """An event whose properties nobody declared: every key has a sample value."""

    def __missing__(self, key: str) -> str:
        return "sample"

    def __contains__(self, key: object) -> bool:
        return True


def sample_context(campaign: Campaign | None, vocab: Vocabulary, now: float, version: str = "sample") -> RenderContext:
    """The context the delivery loop would build for the synthetic person in this campaign."""
    name, data = trigger_data(campaign, vocab)
    history = History(
        aggregates={e: EventAggregate(count=1, first_at=now - 3600, last_at=now - 3600) for e in vocab.events},
        recent=[EventRecord(name=e, at=now - 3600, data=dict(p)) for e, p in sorted(vocab.events.items())],
    )
    campaign_info = {"id": campaign.id, "version": version} if campaign is not None else {}
    event = data if data is not None else _AnyProperty(vocab.events.get(name or "", {}))
    # Constructed, not validated: validation would copy the lenient event into a plain dict.
    return RenderContext.model_construct(
        customer=dict(vocab.attributes), event=event, event_name=name, campaign=campaign_info,
        history=history,
    )
