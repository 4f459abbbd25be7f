"""Exact event conditions, whatever the history length: one small index per (event, where).

Pure. A loaded campaign or segment that reads events with `since`, `within`, `where` or a
count (and `not_performed ... where`) gets a `MatchSpec`: the event name, the `where` and how
many of the latest matching times its conditions need (`depth`). Every tracked event that
matches updates the person's `MatchIndex` for that spec: the lifetime matching count and the
`depth` latest matching times. Conditions are then answered from these indexes, never by
scanning the bounded recent history (which stays for templates and the activity view).

A spec new to a person (a campaign loaded after their events happened) is backfilled from what
the person's record still holds: the retained recent events, and the lifetime totals for an
event without `where`. From then on it is exact.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from agents.person.campaign_walk import conditions
from agents.person.where import matches_where
from schemas.campaigns import Condition, CountSpec, EventCondition, InactivityCondition
from schemas.errors import ConfigurationError
from schemas.person import Event, EventTotals, MatchIndex, PersonState

# The deepest count a windowed or since-entry condition may ask for: each step of depth keeps
# one more timestamp per person for that condition.
MAX_DEPTH = 1000


class ConditionTooDeep(ConfigurationError, ValueError):
    """A windowed or since-entry count condition asks for more than MAX_DEPTH events: lower its count."""


@dataclass(frozen=True)
class MatchSpec:
    """One (event, where) some loaded condition reads, and the latest matching times it needs."""

    key: str
    event: str
    where: dict[str, Any]
    depth: int


def match_key(event: str, where: dict[str, Any]) -> str:
    """The index key of an (event, where): stable across processes and definition edits."""
    return _key(event, _frozen(where) if where else ())


def _frozen(value: Any) -> Any:
    """A hashable form of a JSON value, for the key cache."""
    if isinstance(value, dict):
        return tuple(sorted((k, _frozen(v)) for k, v in value.items()))
    if isinstance(value, list):
        return ("__list__", *(_frozen(v) for v in value))
    return value


@functools.lru_cache(maxsize=4096)
def _key(event: str, frozen_where: Any) -> str:
    # Conditions are evaluated on every decision: hash each (event, where) once.
    where = _thawed(frozen_where)
    canonical = json.dumps([event, where], sort_keys=True, separators=(",", ":"), default=str)
    return "m" + hashlib.sha256(canonical.encode()).hexdigest()[:15]


def _thawed(value: Any) -> Any:
    if isinstance(value, tuple):
        if value and value[0] == "__list__":
            return [_thawed(v) for v in value[1:]]
        return {k: _thawed(v) for k, v in value}
    return value


def count_depth(count: CountSpec | None) -> int:
    """How many of the latest matching times decide this count exactly."""
    if count is None:
        return 1
    needs = [1]
    if count.gte is not None:
        needs.append(count.gte)
    if count.lt is not None:
        needs.append(count.lt)
    needs += [bound + 1 for bound in (count.gt, count.eq, count.lte) if bound is not None]
    return max(needs)


def specs_for(tops: Iterable[tuple[Condition | None, bool]]) -> list[MatchSpec]:
    """The specs a set of top-level conditions needs.

    Each top comes with whether its event conditions count only events after an instant
    (exit and goal: after entry), which makes every event condition inside it need times.
    """
    depth: dict[tuple[str, str], int] = {}
    wheres: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {}
    for top, floored in tops:
        for condition in conditions(top):
            if isinstance(condition, EventCondition):
                timed = floored or condition.since is not None or condition.within is not None
                if not timed and not condition.where:
                    continue  # lifetime count of a name: the totals answer it
                need = count_depth(condition.count) if timed else 1
                name, where = condition.event, condition.where
            elif isinstance(condition, InactivityCondition):
                if not condition.where:
                    continue  # the totals' last time answers it
                need, name, where = 1, condition.not_performed, condition.where
            else:
                continue
            if need > MAX_DEPTH:
                raise ConditionTooDeep(
                    f"{name}: a count of {need - 1}+ events inside a window or since entry is "
                    f"more than Nudge keeps exactly ({MAX_DEPTH}); use a lower count"
                )
            key = match_key(name, where)
            depth[(name, key)] = max(depth.get((name, key), 0), need)
            wheres[(name, key)] = (name, where)
    return [
        MatchSpec(key=key, event=wheres[(name, key)][0], where=wheres[(name, key)][1], depth=d)
        for (name, key), d in depth.items()
    ]


def record_match(index: MatchIndex | None, at: float, depth: int) -> MatchIndex:
    """The index after one more matching event at `at` (which may arrive out of order)."""
    index = index if index is not None else MatchIndex()
    index.count += 1
    times = index.times
    if len(times) < depth or at > times[0]:
        bisect.insort(times, at)
        if len(times) > depth:
            del times[: len(times) - depth]
    return index


def track_event(state: PersonState, event: Event, specs: Iterable[MatchSpec]) -> None:
    """Record one tracked event in every index whose (event, where) it matches."""
    for spec in specs:
        if spec.where and not matches_where(event.data, spec.where):
            continue
        state.matches[spec.key] = record_match(state.matches.get(spec.key), event.at, spec.depth)


def backfill(
    spec: MatchSpec, recent: Iterable[Event], totals: EventTotals | None, existing: MatchIndex | None
) -> MatchIndex:
    """An index for `spec` from what the person's record holds (see the module docstring)."""
    matching = sorted(
        e.at for e in recent if e.name == spec.event and matches_where(e.data, spec.where)
    )
    if existing is not None:
        # Deepen an index a new, deeper condition shares: older retained events fill it up.
        oldest = existing.times[0] if existing.times else float("inf")
        times = [t for t in matching if t < oldest] + existing.times
        return MatchIndex(count=existing.count, times=times[-spec.depth :])
    count = len(matching)
    if not spec.where and totals is not None:
        count = max(count, totals.count)
    return MatchIndex(count=count, times=matching[-spec.depth :])
