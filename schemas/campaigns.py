"""The campaign language: campaigns, triggers, steps, conditions and segments as pydantic models.

Files in `campaigns/*.yaml`, `segments/*.yaml` and scenario files validate into these. Each
condition, trigger and step is told apart by its leading key (`{event: ...}`, `{wait: 2d}`), so
a typo produces one readable error instead of one per union member. `CampaignFileError` turns a
pydantic ValidationError into `file: path: what is wrong` lines.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from schemas.durations import Duration
from schemas.errors import ConfigurationError

__all__ = [
    "AllCondition",
    "AnyCondition",
    "AttributeChangedTrigger",
    "AttributeCondition",
    "BranchStep",
    "Campaign",
    "CampaignFileError",
    "ComputedAggregate",
    "ComputedAttribute",
    "Condition",
    "CountSpec",
    "DateBetween",
    "DateOffset",
    "DateTrigger",
    "EventCondition",
    "EventTrigger",
    "ExitStep",
    "Goal",
    "InactivityCondition",
    "MessageCondition",
    "NotCondition",
    "RandomCohort",
    "RandomStep",
    "ReentryAfter",
    "SegmentCondition",
    "SegmentDefinition",
    "SegmentTrigger",
    "SendStep",
    "SetStep",
    "SplitCase",
    "SplitStep",
    "Step",
    "TimeWindowStep",
    "Trigger",
    "WaitStep",
    "WaitUntilStep",
    "WebhookStep",
    "describe_error",
    "describe_validation_error",
]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    # The leading key that identifies this shape inside a union (see _by_key).
    key: ClassVar[str] = ""


def _by_key(kind: str, models: list[type[_Spec]]) -> Any:
    """A discriminator that picks the union member whose leading key the mapping has."""
    keys = [m.key for m in models]

    def pick(value: Any) -> str | None:
        if isinstance(value, dict):
            for key in keys:
                if key in value:
                    return f"~{key}"
            return None
        kind = getattr(type(value), "key", None)
        return f"~{kind}" if kind else None

    return Discriminator(
        pick,
        custom_error_type=f"invalid_{kind}",
        custom_error_message=f"not a {kind}: it needs one of the keys {', '.join(keys)}",
    )


# --- conditions --------------------------------------------------------------------------


class AttributeCondition(_Spec):
    """`{attribute: A, eq|ne|in|exists|gt|gte|lt|lte|contains: V}`, timestamps `older_than` etc.

    Several operators in one mapping must all hold.
    """

    key: ClassVar[str] = "attribute"
    attribute: str
    eq: Any = None
    ne: Any = None
    in_: list[Any] | None = Field(default=None, alias="in")
    exists: bool | None = None
    gt: Any = None
    gte: Any = None
    lt: Any = None
    lte: Any = None
    contains: Any = None
    older_than: Duration | None = None
    within_last: Duration | None = None
    within_next: Duration | None = None

    OPERATORS: ClassVar[tuple[str, ...]] = (
        "eq", "ne", "in_", "exists", "gt", "gte", "lt", "lte", "contains",
        "older_than", "within_last", "within_next",
    )

    @model_validator(mode="after")
    def _has_operator(self) -> AttributeCondition:
        if not any(op in self.model_fields_set for op in self.OPERATORS):
            raise ValueError(
                "an attribute condition needs an operator: eq, ne, in, exists, gt, gte, lt, "
                "lte, contains, older_than, within_last or within_next"
            )
        return self

    def operators(self) -> list[tuple[str, Any]]:
        """The operators given, in a fixed order, with their operands."""
        return [(op, getattr(self, op)) for op in self.OPERATORS if op in self.model_fields_set]


class CountSpec(_Spec):
    """How many matching events: `{gte: 3}`; several bounds must all hold."""

    eq: int | None = None
    gt: int | None = None
    gte: int | None = None
    lt: int | None = None
    lte: int | None = None


class EventCondition(_Spec):
    """`{event: NAME, where: {...}, count: {gte: 3}, within: 7d}` or `since: entry`."""

    key: ClassVar[str] = "event"
    event: str
    where: dict[str, Any] = Field(default_factory=dict)
    # Absent: at least one.
    count: CountSpec | None = None
    within: Duration | None = None
    since: Literal["entry"] | None = None

    @field_validator("count", mode="before")
    @classmethod
    def _plain_count(cls, value: Any) -> Any:
        # `count: 3` reads as "at least 3".
        if isinstance(value, int) and not isinstance(value, bool):
            return {"gte": value}
        return value


class InactivityCondition(_Spec):
    """`{not_performed: NAME, for: 7d}`: that long since the later of the last one and first seen."""

    key: ClassVar[str] = "not_performed"
    not_performed: str
    for_: Duration = Field(alias="for")
    where: dict[str, Any] = Field(default_factory=dict)


class SegmentCondition(_Spec):
    """`{segment: ID}`: the person is in the segment now."""

    key: ClassVar[str] = "segment"
    segment: str


class MessageCondition(_Spec):
    """`{message: TEMPLATE, opened: true}`: some message from that template has (or lacks) a status.

    Without a status flag it means "a message from that template was sent".
    """

    key: ClassVar[str] = "message"
    message: str
    sent: bool | None = None
    delivered: bool | None = None
    opened: bool | None = None
    clicked: bool | None = None
    bounced: bool | None = None
    failed: bool | None = None
    since: Literal["entry"] | None = None

    STATUSES: ClassVar[tuple[str, ...]] = (
        "sent", "delivered", "opened", "clicked", "bounced", "failed",
    )

    def flags(self) -> dict[str, bool]:
        """The status flags given: status -> wanted."""
        return {s: getattr(self, s) for s in self.STATUSES if getattr(self, s) is not None}


class AllCondition(_Spec):
    """Every condition holds (an empty list holds)."""

    key: ClassVar[str] = "all"
    all: list[Condition]


class AnyCondition(_Spec):
    """At least one condition holds."""

    key: ClassVar[str] = "any"
    any: list[Condition]


class NotCondition(_Spec):
    """The condition does not hold."""

    key: ClassVar[str] = "not"
    not_: Condition = Field(alias="not")


_CONDITIONS: list[type[_Spec]] = [
    AllCondition, AnyCondition, NotCondition, InactivityCondition, AttributeCondition,
    EventCondition, SegmentCondition, MessageCondition,
]

Condition = Annotated[
    (
        Annotated[AllCondition, Tag("~all")] | Annotated[AnyCondition, Tag("~any")] |
        Annotated[NotCondition, Tag("~not")] | Annotated[InactivityCondition, Tag("~not_performed")] |
        Annotated[AttributeCondition, Tag("~attribute")] | Annotated[EventCondition, Tag("~event")] |
        Annotated[SegmentCondition, Tag("~segment")] | Annotated[MessageCondition, Tag("~message")]
    ),
    _by_key("condition", _CONDITIONS),
]


def _inline_condition(value: Any, option: str) -> Any:
    """`{<condition>, option: X}` is the short form of `{condition: {...}, option: X}`."""
    if isinstance(value, dict) and "condition" not in value:
        shaped: dict[str, Any] = {"condition": {k: v for k, v in value.items() if k != option}}
        if option in value:
            shaped[option] = value[option]
        return shaped
    return value


class Goal(_Spec):
    """A conversion: `condition` holds within `within` of entry (no `within`: while it runs).

    Written `{event: NAME, within: 7d}` or any condition plus `within`; event conditions count
    only events after entry.
    """

    condition: Condition
    within: Duration | None = None

    @model_validator(mode="before")
    @classmethod
    def _inline(cls, value: Any) -> Any:
        return _inline_condition(value, "within")


# --- triggers ----------------------------------------------------------------------------


class EventTrigger(_Spec):
    """`{event: NAME, where: {...}}`: every matching event is a trigger."""

    key: ClassVar[str] = "event"
    event: str
    where: dict[str, Any] = Field(default_factory=dict)


class DateOffset(_Spec):
    """The moment at a timestamp attribute plus `offset` (negative: before it)."""

    attribute: str
    offset: Duration = 0.0


class DateBetween(_Spec):
    """The moment `at` percent of the way from one timestamp attribute to another."""

    from_: str = Field(alias="from")
    to: str
    at: float

    @field_validator("at", mode="before")
    @classmethod
    def _percent(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip().endswith("%"):
            try:
                return float(value.strip()[:-1])
            except ValueError:
                pass
            raise ValueError(f"{value!r} is not a percentage (e.g. 50%)")
        return value


class DateTrigger(_Spec):
    """`{date: {attribute: A, offset: -3d}}` or `{date: {from: A, to: B, at: 50%}}`."""

    key: ClassVar[str] = "date"
    date: DateOffset | DateBetween

    @field_validator("date", mode="before")
    @classmethod
    def _shape(cls, value: Any) -> Any:
        if isinstance(value, dict) and "attribute" in value:
            return DateOffset.model_validate(value)
        if isinstance(value, dict) and "from" in value:
            return DateBetween.model_validate(value)
        if isinstance(value, dict):
            raise ValueError("a date trigger needs `attribute` (with `offset`) or `from`, `to`, `at`")
        return value


class AttributeChangedTrigger(_Spec):
    """`{attribute_changed: A}`: the attribute got a different value (set, changed or removed)."""

    key: ClassVar[str] = "attribute_changed"
    attribute_changed: str


class SegmentTrigger(_Spec):
    """`{segment: ID}`: the person entered the segment."""

    key: ClassVar[str] = "segment"
    segment: str


_TRIGGERS: list[type[_Spec]] = [EventTrigger, DateTrigger, AttributeChangedTrigger, SegmentTrigger]

Trigger = Annotated[
    (
        Annotated[EventTrigger, Tag("~event")] | Annotated[DateTrigger, Tag("~date")] |
        Annotated[AttributeChangedTrigger, Tag("~attribute_changed")] |
        Annotated[SegmentTrigger, Tag("~segment")]
    ),
    _by_key("trigger", _TRIGGERS),
]


# --- steps -------------------------------------------------------------------------------


class SendStep(_Spec):
    """`send: TEMPLATE`."""

    key: ClassVar[str] = "send"
    send: str


class WaitStep(_Spec):
    """`wait: 48h`."""

    key: ClassVar[str] = "wait"
    wait: Duration


class WaitUntilSpec(_Spec):
    """Wait until `condition` holds, or `max` has passed; then go on either way."""

    condition: Condition
    max: Duration

    @model_validator(mode="before")
    @classmethod
    def _inline(cls, value: Any) -> Any:
        return _inline_condition(value, "max")


class WaitUntilStep(_Spec):
    """`wait_until: {event: X, since: entry, max: 3d}` (or `{condition: C, max: 3d}`)."""

    key: ClassVar[str] = "wait_until"
    wait_until: WaitUntilSpec


Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_DAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_CLOCK = re.compile(r"([01]\d|2[0-3]):([0-5]\d)")


class TimeWindowSpec(_Spec):
    """Days and hours, in the person's `timezone` attribute, else `fallback_timezone`."""

    days: list[Weekday] = list(_DAYS)
    from_: str = Field(default="00:00", alias="from")
    to: str = "24:00"
    fallback_timezone: str = "UTC"

    @field_validator("days", mode="before")
    @classmethod
    def _lower_days(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [str(d).strip().lower()[:3] for d in value]
        return value

    @field_validator("from_", "to", mode="before")
    @classmethod
    def _clock(cls, value: Any) -> Any:
        # YAML 1.1 reads an unquoted 09:00 as the sexagesimal integer 540.
        if isinstance(value, int) and not isinstance(value, bool):
            value = f"{value // 60:02d}:{value % 60:02d}"
        if not isinstance(value, str) or not (_CLOCK.fullmatch(value) or value == "24:00"):
            raise ValueError(f"{value!r} is not a time of day (use HH:MM, e.g. \"09:00\")")
        return value

    @field_validator("fallback_timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not an IANA time zone (e.g. Europe/Berlin)") from None
        return value

    def minutes(self) -> tuple[int, int]:
        """`from` and `to` as minutes after midnight."""
        def m(text: str) -> int:
            hours, minutes = text.split(":")
            return int(hours) * 60 + int(minutes)

        return m(self.from_), m(self.to)


class TimeWindowStep(_Spec):
    """`time_window: {days: [mon, ...], from: "09:00", to: "17:00", fallback_timezone: UTC}`."""

    key: ClassVar[str] = "time_window"
    time_window: TimeWindowSpec


class BranchSpec(_Spec):
    """If `if` holds, `then`; else `else`."""

    if_: Condition = Field(alias="if")
    then: list[Step] = Field(default_factory=list)
    else_: list[Step] = Field(default_factory=list, alias="else")


class BranchStep(_Spec):
    """`branch: {if: C, then: [...], else: [...]}`."""

    key: ClassVar[str] = "branch"
    branch: BranchSpec


class SplitCase(_Spec):
    """One case of a split: `{if: C, then: [...]}`, or the final `{else: [...]}`."""

    if_: Condition | None = Field(default=None, alias="if")
    then: list[Step] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _else(cls, value: Any) -> Any:
        if isinstance(value, dict) and "else" in value:
            if set(value) != {"else"}:
                raise ValueError("an `else` case holds only `else: [steps]`")
            return {"then": value["else"]}
        if isinstance(value, dict) and "if" not in value and set(value) - {"then"}:
            # (`{then: [...]}` alone is how an `else` case serializes.)
            raise ValueError("a split case needs `if` and `then`, or only `else`")
        return value


class SplitStep(_Spec):
    """`split: [{if: C, then: [...]}, ..., {else: [...]}]`: the first matching case runs."""

    key: ClassVar[str] = "split"
    split: list[SplitCase] = Field(min_length=1)

    @field_validator("split")
    @classmethod
    def _else_last(cls, cases: list[SplitCase]) -> list[SplitCase]:
        for case in cases[:-1]:
            if case.if_ is None:
                raise ValueError("the `else` case must come last")
        return cases


class RandomCohort(_Spec):
    """A share of people (stable per person) and the steps they take."""

    percent: float = Field(gt=0, le=100)
    steps: list[Step] = Field(default_factory=list)

    @field_validator("percent", mode="before")
    @classmethod
    def _percent(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip().endswith("%"):
            return value.strip()[:-1]
        return value


class RandomStep(_Spec):
    """`random: [{percent: 50, steps: [...]}, ...]`; shares under 100% leave the rest to go on."""

    key: ClassVar[str] = "random"
    random: list[RandomCohort] = Field(min_length=1)

    @field_validator("random")
    @classmethod
    def _at_most_all(cls, cohorts: list[RandomCohort]) -> list[RandomCohort]:
        total = sum(c.percent for c in cohorts)
        if total > 100.0 + 1e-9:
            raise ValueError(f"the cohorts add up to {total:g}%, more than 100%")
        return cohorts


class SetStep(_Spec):
    """`set: {attr: value}`: update the person's attributes (null removes one)."""

    key: ClassVar[str] = "set"
    set: dict[str, Any] = Field(min_length=1)


class WebhookSpec(_Spec):
    """Where to POST; `body` defaults to the person, campaign and trigger event."""

    url: str = Field(pattern=r"^https?://")
    body: dict[str, Any] | None = None
    headers: dict[str, str] = Field(default_factory=dict)


class WebhookStep(_Spec):
    """`webhook: {url, body?, headers?}`: emits a CallWebhook command; never blocks the journey."""

    key: ClassVar[str] = "webhook"
    webhook: WebhookSpec


class ExitStep(_Spec):
    """`exit: true`: the journey ends here."""

    key: ClassVar[str] = "exit"
    exit: Literal[True]


_STEPS: list[type[_Spec]] = [
    SendStep, WaitUntilStep, WaitStep, TimeWindowStep, BranchStep, SplitStep, RandomStep,
    SetStep, WebhookStep, ExitStep,
]

Step = Annotated[
    (
        Annotated[SendStep, Tag("~send")] | Annotated[WaitUntilStep, Tag("~wait_until")] |
        Annotated[WaitStep, Tag("~wait")] | Annotated[TimeWindowStep, Tag("~time_window")] |
        Annotated[BranchStep, Tag("~branch")] | Annotated[SplitStep, Tag("~split")] |
        Annotated[RandomStep, Tag("~random")] | Annotated[SetStep, Tag("~set")] |
        Annotated[WebhookStep, Tag("~webhook")] | Annotated[ExitStep, Tag("~exit")]
    ),
    _by_key("step", _STEPS),
]


# --- campaigns and segments --------------------------------------------------------------


class ReentryAfter(_Spec):
    """`{after: 30d}`: a new journey may start this long after the previous entry."""

    after: Duration


_ID = r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$"


class Campaign(_Spec):
    """One campaign: who enters (trigger, filter, reentry), when they leave, and the steps."""

    id: str = Field(pattern=_ID, max_length=100)
    name: str | None = None
    description: str | None = None
    # None: the campaign only runs when broadcast (`nudge broadcast CAMPAIGN --segment S`).
    trigger: Trigger | None = None
    filter: Condition | None = None
    reentry: Literal["once", "always"] | ReentryAfter = "once"
    exit: Condition | None = None
    goal: Goal | None = None
    # Transactional campaigns still reach people who unsubscribed (never suppressed ones).
    transactional: bool = False
    steps: list[Step] = Field(default_factory=list)

    @field_validator("reentry", mode="before")
    @classmethod
    def _reentry(cls, value: Any) -> Any:
        if value in ("once", "always") or isinstance(value, (dict, ReentryAfter)):
            return value
        raise ValueError(f"{value!r} is not a re-entry rule (use once, always or {{after: 30d}})")


class SegmentDefinition(_Spec):
    """A named condition (`segments: [{id, when}]`), kept current on every input and flip time;
    or, with `manual: true` and no `when`, a list people are added to and removed from by input."""

    id: str = Field(pattern=_ID, max_length=100)
    name: str | None = None
    description: str | None = None
    when: Condition | None = None
    manual: bool = False

    @model_validator(mode="after")
    def _when_or_manual(self) -> SegmentDefinition:
        if self.manual and self.when is not None:
            raise ValueError("a manual segment has no `when`: people join it by input, not by condition")
        if not self.manual and self.when is None:
            raise ValueError("a segment needs `when: CONDITION` (or `manual: true` for a hand-kept list)")
        return self


ComputedAggregate = Literal["count", "sum", "min", "max", "last"]


class ComputedAttribute(_Spec):
    """An attribute kept from events as they arrive: `{id: lifetime_value, event: purchase,
    aggregate: sum, property: amount}`. Visible as `customer.<id>` and in attribute conditions."""

    id: str = Field(pattern=_ID, max_length=150)
    description: str | None = None
    event: str = Field(min_length=1, max_length=100)
    where: dict[str, Any] = Field(default_factory=dict)
    aggregate: ComputedAggregate
    # The event property aggregated (dots follow nested mappings); not used by `count`.
    property: str | None = None

    @model_validator(mode="after")
    def _property_when_needed(self) -> ComputedAttribute:
        if self.aggregate != "count" and not self.property:
            raise ValueError(f"aggregate {self.aggregate} needs `property: NAME` (the event property)")
        if self.aggregate == "count" and self.property:
            raise ValueError("aggregate count counts events; drop `property`")
        return self


for _model in (
    AllCondition, AnyCondition, NotCondition, Goal, WaitUntilSpec, BranchSpec, BranchStep,
    SplitCase, SplitStep, RandomCohort, RandomStep, WaitUntilStep, Campaign, SegmentDefinition,
):
    _model.model_rebuild()


# --- readable errors ---------------------------------------------------------------------

_ALIASES = {"in_": "in", "not_": "not", "for_": "for", "from_": "from", "if_": "if", "else_": "else"}
_UNION_MEMBERS = {"DateOffset", "DateBetween", "ReentryAfter", "literal['once','always']"}


def _path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part.startswith("~") or part in _UNION_MEMBERS or part.startswith(("function-", "literal[")):
            pass
        else:
            name = _ALIASES.get(part, part)
            out += f".{name}" if out else name
    return out


def _message(error: dict[str, Any]) -> str:
    text = str(error["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        if text.startswith(prefix):
            text = text[len(prefix):]
    if error["type"] == "extra_forbidden":
        return "unknown key (check the spelling)"
    return text


def describe_error(item: dict[str, Any], prefix: str = "") -> str:
    """One pydantic error as `path: problem`; `prefix` (e.g. `campaigns[1]`) leads the path."""
    path = _path(tuple(item["loc"]))
    if prefix:
        path = prefix + ("" if not path or path.startswith("[") else ".") + path
    message = _message(item)
    if "input" in item and item["type"] in ("literal_error", "string_pattern_mismatch"):
        message += f" (got {item['input']!r})"
    return f"{path}: {message}" if path else message


def describe_validation_error(error: ValidationError, prefix: str = "") -> list[str]:
    """One `path: problem` line per distinct error; `prefix` (e.g. `campaigns[1]`) leads each path."""
    lines: list[str] = []
    for item in error.errors():
        line = describe_error(dict(item), prefix)
        if line not in lines:
            lines.append(line)
    return lines


class CampaignFileError(ConfigurationError, ValueError):
    """A campaign, segment or scenario file is invalid; the message names the file and path."""

    def __init__(self, file: str, problems: list[str]) -> None:
        self.file = file
        self.problems = problems
        super().__init__("\n".join(f"{file}: {p}" for p in problems))

    @classmethod
    def from_validation(
        cls, file: str, error: ValidationError, prefix: str = ""
    ) -> CampaignFileError:
        """Wrap pydantic's error; `prefix` (e.g. `campaigns[1]`) goes before each path."""
        return cls(file, describe_validation_error(error, prefix))
