"""What each event condition sees of the past when its campaign or segment is first loaded. Pure.

Conditions are exact from then on (agents/person/event_index.py); what differs is their start:
`{event: X}` (and `count`, and `not_performed: X` without `where`) reads the lifetime totals; a
condition with `where` or `within` starts from the person's retained recent history; one counting
only events after entry (`since: entry`, or in `exit` and `goal`) does not look at the past.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from agents.check.definitions import Definitions, Located, campaign_conditions, located_conditions
from schemas.campaigns import Condition, EventCondition, InactivityCondition

RECENT = "starts from each person's recent history (their last NUDGE_HISTORY_LIMIT events), then is exact"
TOTALS = "reads the lifetime totals (exact, kept forever)"
AFTER_ENTRY = "counts only events after entry (the past does not matter)"


def _text(condition: EventCondition | InactivityCondition) -> str:
    raw = condition.model_dump(by_alias=True, exclude_defaults=True)
    return "{" + ", ".join(f"{k}: {v}" for k, v in raw.items()) + "}"


def _start(condition: Condition, after_entry: bool) -> str | None:
    if isinstance(condition, EventCondition):
        if after_entry or condition.since == "entry":
            return AFTER_ENTRY
        return RECENT if condition.where or condition.within is not None else TOTALS
    if isinstance(condition, InactivityCondition):
        return RECENT if condition.where else TOTALS
    return None


def _lines(item: Located[Any], conditions: Iterator[tuple[tuple[int | str, ...], Condition]]) -> Iterator[str]:
    for path, condition in conditions:
        after_entry = path[:1] in (("exit",), ("goal",))
        start = _start(condition, after_entry)
        if start is not None:
            assert isinstance(condition, (EventCondition, InactivityCondition))
            yield f"{item.file}:{item.line(*path)}: {_text(condition)} {start}"


def history_notes(found: Definitions) -> list[str]:
    """One line per event condition: where it is and what it sees of the past when loaded."""
    out: list[str] = []
    for campaign in found.campaigns:
        out += _lines(campaign, campaign_conditions(campaign.model))
    for segment in found.segments:
        out += _lines(segment, located_conditions(segment.model.when, ("when",)))
    return out
