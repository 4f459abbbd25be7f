"""Inputs: everything that can change a person, as it travels on the input topic.

Every input is keyed by its person's id and arrives in order on that person's partition
(docs/architecture.md, "The one rule"). On the wire a Kafka message is either one input or an
`Envelope` of inputs whose keys all map to the same partition.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

# Events tracked before a person is known are kept under the person id `anon:<anonymous_id>`;
# an identify naming that anonymous id merges them into the known person.
ANONYMOUS_PREFIX = "anon:"


def anonymous_person(anonymous_id: str) -> str:
    """The person id anonymous events are tracked under."""
    return f"{ANONYMOUS_PREFIX}{anonymous_id}"


def is_anonymous(person: str) -> bool:
    """Whether a person id names an anonymous visitor (who never enters journeys or gets email)."""
    return person.startswith(ANONYMOUS_PREFIX)


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    person: str = Field(min_length=1, max_length=150)
    # When it happened, Unix seconds (an event's own timestamp, else the time it was accepted).
    at: float


class Identify(_Input):
    """Create or update a person's attributes (Track API `PUT /customers/{id}`)."""

    kind: Literal["identify"] = "identify"
    attributes: dict[str, Any] = Field(default_factory=dict)
    # Events sent before the person was known, under this anonymous id, fold into them.
    anonymous_id: str | None = None
    # Track API `_update`: change an existing person only; never create one.
    update_only: bool = False


class Track(_Input):
    """Something the person did: an event, a page view or a screen view."""

    kind: Literal["track"] = "track"
    name: str = Field(min_length=1, max_length=100)
    data: dict[str, Any] = Field(default_factory=dict)
    type: Literal["event", "page", "screen"] = "event"
    # The producer's id for deduplication (Track API `id`, Segment `messageId`).
    event_id: str | None = None


class Delete(_Input):
    """Erase the person: state, history, journeys."""

    kind: Literal["delete"] = "delete"


class Suppress(_Input):
    """Suppress (or, with `suppressed=False`, unsuppress) the person."""

    kind: Literal["suppress"] = "suppress"
    suppressed: bool = True


class Unsubscribe(_Input):
    """The person unsubscribed (or re-subscribed); marketing sends stop."""

    kind: Literal["unsubscribe"] = "unsubscribe"
    unsubscribed: bool = True
    message_id: str | None = None


# The timer id of a wake for whatever is due first: every timer due by its `due` fires.
NEXT_TIMER = "next"


class Wake(_Input):
    """A timer of this person fell due (`timer_id`, or NEXT_TIMER: everything due by `due`).
    Stale wakes (nothing due any more) change nothing."""

    kind: Literal["wake"] = "wake"
    timer_id: str
    due: float


DeliveryStatus = Literal[
    "sent", "failed", "bounced", "complained", "opened", "clicked"
]


class Delivery(_Input):
    """What happened to a message the engine asked for, fed back by the delivery side."""

    kind: Literal["delivery"] = "delivery"
    message_id: str
    status: DeliveryStatus
    campaign_id: str | None = None
    template: str | None = None
    reason: str | None = None
    url: str | None = None


class Devices(_Input):
    """Add (or update) or remove one of the person's devices (push tokens)."""

    kind: Literal["devices"] = "devices"
    action: Literal["add", "remove"]
    device_id: str = Field(min_length=1)
    platform: str | None = None
    last_used: float | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)


class MergeInto(_Input):
    """Sent to a secondary person: hand everything over to `into`, then be erased.

    Merging crosses partitions, so it takes two inputs: this one on the secondary's partition,
    and the `Absorb` it emits on the primary's.
    """

    kind: Literal["merge_into"] = "merge_into"
    into: str = Field(min_length=1, max_length=150)


class Absorb(_Input):
    """Sent to a primary person: fold in `state`, the serialized state of `source`."""

    kind: Literal["absorb"] = "absorb"
    source: str
    state: dict[str, Any]


class SegmentMembership(_Input):
    """Add the person to (or remove them from) a manual segment."""

    kind: Literal["segment_membership"] = "segment_membership"
    segment: str = Field(min_length=1)
    member: bool = True


class BroadcastSend(_Input):
    """A broadcast reached this person: send `template` if they may get it now.

    The broadcast scan emits one per person of a partition (in envelopes); the person agent
    checks segment membership, suppression and subscription, records the message in the
    person's history and emits the `SendEmail`. The scan never reads person state.
    """

    kind: Literal["broadcast_send"] = "broadcast_send"
    broadcast_id: str = Field(min_length=1)
    campaign_id: str = Field(min_length=1)
    campaign_version: str | None = None
    template: str = Field(min_length=1)
    # Only members of this segment get it (None: everyone the scan reaches).
    segment: str | None = None
    transactional: bool = False


class Reevaluate(_Input):
    """Re-evaluate the person's segments now (sent by a backfill after definitions change)."""

    kind: Literal["reevaluate"] = "reevaluate"
    reason: str = ""


Input = Annotated[
    (
        Identify | Track | Delete | Suppress | Unsubscribe | Wake | Delivery | Devices | MergeInto | Absorb |
        SegmentMembership | BroadcastSend | Reevaluate
    ),
    Field(discriminator="kind"),
]


class Envelope(BaseModel):
    """Several inputs in one Kafka message; every person in it maps to the same partition."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    inputs: list[Input]
