"""Commands: what the decision core asks the outside world to do.

The core returns them; the person agent's shell publishes them. Each carries a deterministic
id so that a replayed command changes nothing downstream.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from schemas.history import History
from schemas.inputs import Input


class RenderContext(BaseModel):
    """Everything a template may read, frozen at decision time."""

    model_config = ConfigDict(frozen=True)

    customer: dict[str, Any] = Field(default_factory=dict)
    # The trigger event's properties, plus `name` under `event_name`.
    event: dict[str, Any] = Field(default_factory=dict)
    event_name: str | None = None
    campaign: dict[str, Any] = Field(default_factory=dict)
    history: History = Field(default_factory=History)


class SendEmail(BaseModel):
    """Send `template` to `person`. `message_id` = hash(person, campaign, journey, step)."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["send_email"] = "send_email"
    message_id: str
    person: str
    to: str | None
    template: str
    campaign_id: str | None = None
    campaign_version: str | None = None
    journey_id: str | None = None
    step: str | None = None
    decided_at: float
    # Why this message was sent, for the activity log ("welcome v1a2b: step 0 after signed_up").
    reason: str = ""
    transactional: bool = False
    # Over the per-person marketing limit: "defer" sends it once under the limit, "drop" never.
    limit_policy: Literal["defer", "drop"] = "defer"
    context: RenderContext = Field(default_factory=RenderContext)


class CallWebhook(BaseModel):
    """POST `body` as JSON to `url`; `call_id` makes a replay harmless."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["call_webhook"] = "call_webhook"
    call_id: str
    person: str
    url: str
    body: dict[str, Any] = Field(default_factory=dict)
    headers: dict[str, str] = Field(default_factory=dict)
    campaign_id: str | None = None
    journey_id: str | None = None
    decided_at: float


JourneyEventKind = Literal["entered", "completed", "exited", "converted", "step"]


class JourneyEvent(BaseModel):
    """A journey metric and its provenance.

    `entered`, `completed`, `exited` and `converted` happen once per journey (one row per
    journey and kind, so counting them is idempotent); `step` is one per step taken (one row
    per journey and step path). `position` and `resume_at` say where the journey waits after
    this event, so a read model can show the people at each step and their next wake-up.
    """

    model_config = ConfigDict(frozen=True)

    kind: Literal["journey_event"] = "journey_event"
    event: JourneyEventKind
    person: str
    campaign_id: str
    campaign_version: str
    journey_id: str
    at: float
    reason: str = ""
    # The step this event is about, as a path ("2.0.1"), and its kind (send, wait, branch...).
    step: str | None = None
    step_kind: str | None = None
    # Provenance: for a branch or split, the condition and the values it saw; for an exit,
    # the condition that held; for a send, the template and message id.
    detail: dict[str, Any] = Field(default_factory=dict)
    # Where the journey is after this event (None once it has ended) and its next wake-up.
    position: str | None = None
    resume_at: float | None = None


class Activity(BaseModel):
    """One input as the activity log shows it: what arrived and what it changed."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["activity"] = "activity"
    person: str
    at: float
    input_kind: str
    # One line a person reads: "track signed_up {plan: trial}", "identify plan_type: trial -> paid".
    summary: str
    # What changed: attributes (name -> [old, new]), journeys entered/exited, segments, sends.
    changes: dict[str, Any] = Field(default_factory=dict)
    # For the event catalog: the event name and its properties, when the input was a track.
    event_name: str | None = None
    event_type: str | None = None
    event_data: dict[str, Any] | None = None
    # The input itself, as producers write it to the input topic (`nudge activity --export`
    # writes these back out as a replayable JSONL file).
    input: dict[str, Any] | None = None


class PersonSnapshot(BaseModel):
    """The person as PostgreSQL shows it (profile, segments); `deleted` erases them there."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["person_snapshot"] = "person_snapshot"
    person: str
    at: float
    deleted: bool = False
    email: str | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)
    suppressed: bool = False
    unsubscribed: bool = False
    # Segment id -> entry time (Unix seconds).
    segments: dict[str, float] = Field(default_factory=dict)


class EmitInput(BaseModel):
    """Publish `input` on the input topic (to its own person's partition)."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["emit_input"] = "emit_input"
    input: Annotated[Input, Field()]

    @property
    def person(self) -> str:
        """The person the input is for (every command names one)."""
        return self.input.person


Command = Annotated[
    SendEmail | CallWebhook | JourneyEvent | Activity | PersonSnapshot | EmitInput,
    Field(discriminator="kind"),
]


M = TypeVar("M", bound=BaseModel)
# Per model: every field with its plain default (in declaration order, which is the JSON key
# order), and the fields whose default comes from a factory.
_DEFAULTS: dict[type[BaseModel], tuple[dict[str, Any], list[tuple[str, Callable[[], Any]]]]] = {}


def trusted(model: type[M], **values: Any) -> M:
    """A model from values the decision core built itself, without validating them again.

    The core makes several commands per input from values that are already of the declared
    types; validating them again cost about half of their construction, and pydantic's own
    `model_construct` costs more than validating (it resolves every field's aliases and
    defaults each time). This sets exactly what construction sets: the given values, the
    declared defaults for the rest, and which fields were given.
    `tests/unit/test_commands_trusted.py` checks it equals validated construction for every
    command the core builds, so a pydantic upgrade that changes the internals fails there.
    """
    known = _DEFAULTS.get(model)
    if known is None:
        fields = model.model_fields
        known = _DEFAULTS[model] = (
            {name: info.default for name, info in fields.items()},
            [(name, info.default_factory) for name, info in fields.items() if info.default_factory],  # type: ignore[misc]
        )
    plain, factories = known
    data = {**plain, **values}
    for name, factory in factories:
        if name not in values:
            data[name] = factory()
    made = model.__new__(model)
    object.__setattr__(made, "__dict__", data)
    object.__setattr__(made, "__pydantic_fields_set__", set(values))
    object.__setattr__(made, "__pydantic_extra__", None)
    object.__setattr__(made, "__pydantic_private__", None)
    return made
