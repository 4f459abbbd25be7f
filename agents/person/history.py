"""Recording what a person did and was sent: totals, the bounded recent events, message records.

Pure. The recent events are bounded by count and by encoded bytes, oldest first out, so a
person's record stays well under the changelog's message size whatever they send; an event too
big to keep whole is kept without its properties. Both trims are reported, so the activity log
can show them.
"""

from __future__ import annotations

from dataclasses import dataclass

from agents.person.config import EngineConfig
from agents.person.state_codec import encode_event
from schemas.person import Event, EventTotals, MessageRecord, PersonState


@dataclass
class Trimmed:
    """What recording an event had to drop to stay inside the byte bounds."""

    events: int = 0
    properties: bool = False


def add_totals(state: PersonState, name: str, at: float, count: int = 1) -> None:
    """Count `count` events named `name` at `at` in the lifetime totals."""
    totals = state.totals.get(name)
    if totals is None:
        state.totals[name] = EventTotals(count=count, first_at=at, last_at=at)
        return
    totals.count += count
    totals.first_at = at if totals.first_at is None else min(totals.first_at, at)
    totals.last_at = at if totals.last_at is None else max(totals.last_at, at)


def remember_event(state: PersonState, event: Event, config: EngineConfig) -> Trimmed:
    """Append `event` to the recent history and trim it back inside its bounds."""
    trimmed = Trimmed()
    raw = encode_event(event)
    if len(raw) > config.event_max_bytes:
        raw = encode_event(
            Event(name=event.name, at=event.at, type=event.type, event_id=event.event_id,
                  data={"_trimmed_bytes": len(raw)})
        )
        trimmed.properties = True
    recent = state.recent
    recent.append(raw)
    size = state.recent_bytes + len(raw)
    excess = len(recent) - config.history_limit
    if excess > 0:
        size -= sum(len(r) for r in recent[:excess])
        del recent[:excess]
    while size > config.history_max_bytes and len(recent) > 1:
        size -= len(recent.pop(0))
        trimmed.events += 1
    state.recent_bytes = size
    return trimmed


def remember_message(state: PersonState, record: MessageRecord, config: EngineConfig) -> None:
    """Add a message record (once per id), bounded per template and in all, oldest first out."""
    if any(m.id == record.id for m in state.messages):
        return
    messages = state.messages
    messages.append(record)
    same = [i for i, m in enumerate(messages) if m.template == record.template]
    for i in reversed(same[: max(0, len(same) - config.messages_per_template)]):
        del messages[i]
    excess = len(messages) - config.message_limit
    if excess > 0:
        del messages[:excess]
