"""Scenario files: campaigns checked against a timeline of inputs (see scenarios/README.md)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Discriminator, Field, Tag, field_validator, model_validator

from schemas.campaigns import Campaign, ComputedAttribute, SegmentDefinition
from schemas.durations import Duration

_KINDS = (
    "identify", "track", "page", "delete", "suppress", "unsubscribe", "merge_into",
    "add_to_segment", "remove_from_segment", "opened", "clicked", "bounced",
)


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class ScenarioTemplate(_Spec):
    """A template given inline: Jinja2 subject and body (and an optional text part)."""

    subject: str
    body: str
    text: str | None = None


class ScenarioInput(_Spec):
    """One input at `at` after start: exactly one of identify (+ anonymous_id), track (+ data),
    page, delete, suppress, unsubscribe, merge_into (this person merges into that one),
    add_to_segment / remove_from_segment (a manual segment), opened / clicked / bounced
    (TEMPLATE: what delivery reports about the person's latest message from that template)."""

    at: Duration
    person: str = Field(min_length=1)
    identify: dict[str, Any] | None = None
    track: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)
    # The producer's event id (Track API `id`), for deduplication.
    id: str | None = None
    page: str | None = None
    delete: Literal[True] | None = None
    suppress: bool | None = None
    unsubscribe: bool | None = None
    merge_into: str | None = None
    add_to_segment: str | None = None
    remove_from_segment: str | None = None
    opened: str | None = None
    clicked: str | None = None
    bounced: str | None = None
    # With identify: the anonymous id this person's earlier events were tracked under.
    anonymous_id: str | None = None
    # The same input `repeat` times, `every` apart (a busy person's hundreds of page views);
    # `{i}` in `id` and in string `data` values becomes the repetition's number (0, 1, ...).
    repeat: int = Field(default=1, ge=1, le=100_000)
    every: Duration | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> ScenarioInput:
        given = [k for k in _KINDS if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                f"an input needs exactly one of {', '.join(_KINDS)} (got {', '.join(given) or 'none'})"
            )
        return self

    @property
    def kind(self) -> str:
        """Which kind of input this is."""
        return next(k for k in _KINDS if getattr(self, k) is not None)

    def expanded(self) -> list[ScenarioInput]:
        """This input once per repetition, each at its own time."""
        if self.repeat == 1:
            return [self]
        step = self.every or 0.0
        return [
            self.model_copy(update={
                "at": self.at + i * step,
                "repeat": 1,
                "id": self.id.replace("{i}", str(i)) if self.id else None,
                "data": {k: v.replace("{i}", str(i)) if isinstance(v, str) else v
                         for k, v in self.data.items()},
            })
            for i in range(self.repeat)
        ]


class SendExpectation(_Spec):
    """`{person, send, at?, count?, contains?}`: at `at`, exactly one; `count`: exactly N;
    neither: at least one. `contains`: the rendered subject or body has the text."""

    person: str
    send: str
    at: Duration | None = None
    count: int | None = Field(default=None, ge=0)
    contains: str | None = None


class NeverExpectation(_Spec):
    """`{person, never: TEMPLATE}`: no such email."""

    person: str
    never: str


class CampaignExpectation(_Spec):
    """`{campaign, entered?, converted?, exited?, completed?}`: journey metrics at the end."""

    campaign: str
    entered: int | None = None
    converted: int | None = None
    exited: int | None = None
    completed: int | None = None


class WebhookExpectation(_Spec):
    """`{person, webhook: URL, at?, count?}`: like a send, for webhook calls."""

    person: str
    webhook: str
    at: Duration | None = None
    count: int | None = Field(default=None, ge=0)


class AttributeExpectation(_Spec):
    """`{person, attribute: A, eq: V}`: the person's attribute at the end (after `set` steps)."""

    person: str
    attribute: str
    eq: Any = None


class SegmentExpectation(_Spec):
    """`{person, segment: ID, member: true}`: whether the person is in the segment at the end."""

    person: str
    segment: str
    member: bool = True


class ExistsExpectation(_Spec):
    """`{person, exists: false}`: whether the person still exists at the end (merged, deleted)."""

    person: str
    exists: bool


def _expectation_kind(value: Any) -> str:
    # Told apart by key, so an error names one shape instead of five.
    keys = value if isinstance(value, dict) else type(value).model_fields
    for key in ("never", "campaign", "webhook", "attribute", "segment", "exists"):
        if key in keys:
            return key
    return "send"


Expectation = Annotated[
    (
        Annotated[SendExpectation, Tag("send")] | Annotated[NeverExpectation, Tag("never")] |
        Annotated[CampaignExpectation, Tag("campaign")] | Annotated[WebhookExpectation, Tag("webhook")] |
        Annotated[AttributeExpectation, Tag("attribute")] | Annotated[SegmentExpectation, Tag("segment")] |
        Annotated[ExistsExpectation, Tag("exists")]
    ),
    Discriminator(_expectation_kind),
]


class Scenario(_Spec):
    """One executable specification: definitions, inputs on a virtual clock, expectations.

    Without `campaigns` of its own, a scenario runs against a project folder's definitions.
    """

    name: str
    covers: str = "engine"
    start: AwareDatetime
    segments: list[SegmentDefinition] = Field(default_factory=list)
    # Computed attributes (as in computed/*.yaml), kept per track and visible as attributes.
    computed: list[ComputedAttribute] = Field(default_factory=list)
    campaigns: list[Campaign] = Field(default_factory=list)
    templates: dict[str, ScenarioTemplate] = Field(default_factory=dict)
    inputs: list[ScenarioInput] = Field(default_factory=list)
    until: Duration | None = None
    expect: list[Expectation] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _no_folder_here(cls, value: Any) -> Any:
        # People try both; the folder is the command's business, so the file runs anywhere.
        if isinstance(value, dict):
            folder = value.get("campaigns_dir", value.get("campaigns"))
            if "campaigns_dir" in value or isinstance(folder, str):
                raise ValueError(
                    f"a scenario does not name its project folder ({folder!r}): leave `campaigns` "
                    "out and run `nudge simulate --campaigns DIR FILE` (default NUDGE_CAMPAIGNS_DIR) "
                    "to run it against that folder's campaigns, segments and templates"
                )
        return value

    @field_validator("inputs", mode="after")
    @classmethod
    def _expand_repeats(cls, inputs: list[ScenarioInput]) -> list[ScenarioInput]:
        return [one for item in inputs for one in item.expanded()]

    @property
    def start_unix(self) -> float:
        """Virtual time zero as Unix seconds."""
        return self.start.timestamp()


__all__ = [
    "AttributeExpectation",
    "CampaignExpectation",
    "ExistsExpectation",
    "Expectation",
    "NeverExpectation",
    "Scenario",
    "ScenarioInput",
    "ScenarioTemplate",
    "SegmentExpectation",
    "SendExpectation",
    "WebhookExpectation",
]
