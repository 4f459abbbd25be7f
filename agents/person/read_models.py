"""The read-model commands of one decision: an `Activity` line and, when it changed, a `PersonSnapshot`.

Built only from what the decision already has (the person before and after, the commands it
issued), so they cost a few dictionary comparisons on the hot path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agents.person.history import Trimmed
from schemas.commands import Activity, Command, JourneyEvent, PersonSnapshot, SendEmail, trusted
from schemas.inputs import (
    Absorb,
    BroadcastSend,
    Delivery,
    Devices,
    Identify,
    Input,
    MergeInto,
    Reevaluate,
    SegmentMembership,
    Suppress,
    Track,
    Unsubscribe,
    Wake,
)
from schemas.person import PersonState


@dataclass(frozen=True)
class Before:
    """What the read models compare against: the person as they were before the input."""

    attributes: dict[str, Any]
    segments: dict[str, float]
    email: str | None
    suppressed: bool
    unsubscribed: bool

    @classmethod
    def of(cls, state: PersonState | None) -> Before | None:
        """Copy just these fields (the decision then changes the state in place)."""
        if state is None:
            return None
        return cls(dict(state.attributes), dict(state.segments), state.email,
                   state.suppressed, state.unsubscribed)


# Values longer than this are cut in summaries (the detail keeps them whole).
_SHORT = 40


def _short(value: Any) -> str:
    text = repr(value) if not isinstance(value, str) else value
    return text if len(text) <= _SHORT else text[: _SHORT - 1] + "…"


def attribute_changes(old: dict[str, Any], new: dict[str, Any]) -> dict[str, list[Any]]:
    """Attribute name -> [old, new] for every attribute added, changed or removed."""
    if old == new:
        return {}
    changes = {k: [old.get(k), v] for k, v in new.items() if old.get(k, _MISSING) != v}
    changes.update({k: [v, None] for k, v in old.items() if k not in new})
    return changes


_MISSING = object()


def _what(input: Input) -> str:
    """The input itself in a few words."""
    if isinstance(input, Track):
        verb = input.name if input.type == "event" else f"{input.type} {input.name}"
        data = ", ".join(f"{k}: {_short(v)}" for k, v in list(input.data.items())[:4])
        return f"{'track ' if input.type == 'event' else ''}{verb}" + (f" {{{data}}}" if data else "")
    if isinstance(input, Identify):
        return "identify" + (f" (was anonymous {input.anonymous_id})" if input.anonymous_id else "")
    if isinstance(input, Suppress):
        return "suppressed" if input.suppressed else "unsuppressed"
    if isinstance(input, Unsubscribe):
        return "unsubscribed" if input.unsubscribed else "resubscribed"
    if isinstance(input, Delivery):
        return f"message {input.template or input.message_id} {input.status}" + (
            f": {input.reason}" if input.reason else ""
        )
    if isinstance(input, Devices):
        return f"device {input.device_id} {'added' if input.action == 'add' else 'removed'}"
    if isinstance(input, SegmentMembership):
        return f"{'added to' if input.member else 'removed from'} segment {input.segment}"
    if isinstance(input, Absorb):
        return f"merged {input.source} into this person"
    if isinstance(input, MergeInto):
        return f"merged into {input.into}"
    if isinstance(input, Wake):
        return "timer"
    if isinstance(input, BroadcastSend):
        return f"broadcast {input.broadcast_id}"
    if isinstance(input, Reevaluate):
        return "re-evaluated" + (f" ({input.reason})" if input.reason else "")
    return input.kind


def read_model_commands(
    old: Before | None, new: PersonState, input: Input, commands: list[Command], at: float,
    *, input_data: dict[str, Any] | None = None, trimmed: Trimmed | None = None,
) -> list[Command]:
    """The Activity for this input (skipped for a wake that changed nothing) and a PersonSnapshot
    when the profile or segment memberships changed."""
    before_attributes = old.attributes if old is not None else {}
    before_segments = old.segments if old is not None else {}
    attributes = attribute_changes(before_attributes, new.attributes)
    entered = [s for s in new.segments if s not in before_segments]
    left = [s for s in before_segments if s not in new.segments]
    journeys = [
        {"campaign": c.campaign_id, "event": c.event, "journey": c.journey_id, "reason": c.reason}
        for c in commands if isinstance(c, JourneyEvent) and c.event != "step"
    ]
    messages = [
        {"template": c.template, "message_id": c.message_id, "campaign": c.campaign_id, "reason": c.reason}
        for c in commands if isinstance(c, SendEmail)
    ]
    changes: dict[str, Any] = {}
    if attributes:
        changes["attributes"] = attributes
    if entered or left:
        changes["segments"] = {"entered": entered, "left": left}
    if journeys:
        changes["journeys"] = journeys
    if messages:
        changes["messages"] = messages
    if trimmed is not None and (trimmed.events or trimmed.properties):
        changes["trimmed"] = {"events": trimmed.events, "properties": trimmed.properties}
    out: list[Command] = []
    if changes or not isinstance(input, (Wake, Reevaluate)):
        parts = [_what(input)]
        if attributes:
            parts.append(", ".join(f"{k}: {_short(o)} -> {_short(n)}" for k, (o, n) in list(attributes.items())[:5]))
        parts += [f"entered segment {s}" for s in entered] + [f"left segment {s}" for s in left]
        parts += [f"{j['event']} {j['campaign']}" for j in journeys]
        parts += [f"queued {m['template']}" for m in messages]
        if "trimmed" in changes:
            parts.append("history trimmed to stay within its size limit")
        track = input if isinstance(input, Track) else None
        out.append(
            trusted(
                Activity,
                person=new.person,
                at=at,
                input_kind=input.kind,
                summary="; ".join(parts),
                changes=changes,
                event_name=track.name if track else None,
                event_type=track.type if track else None,
                event_data=track.data if track else None,
                input=input_data if input_data is not None else input.model_dump(mode="json", exclude_none=True),
            )
        )
    profile_changed = (
        old is None
        or attributes
        or entered
        or left
        or old.email != new.email
        or old.suppressed != new.suppressed
        or old.unsubscribed != new.unsubscribed
    )
    if profile_changed:
        out.append(snapshot(new, at))
    return out


def snapshot(state: PersonState, at: float) -> PersonSnapshot:
    """The person as PostgreSQL shows them."""
    return trusted(
        PersonSnapshot,
        person=state.person,
        at=at,
        email=state.email,
        attributes=dict(state.attributes),
        suppressed=state.suppressed,
        unsubscribed=state.unsubscribed,
        segments=dict(state.segments),
    )


def erased(person: str, at: float) -> PersonSnapshot:
    """Tells PostgreSQL to forget the person."""
    return PersonSnapshot(person=person, at=at, deleted=True)
