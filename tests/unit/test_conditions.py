"""Conditions: whether they hold now, and the next instant time alone could flip them."""

from __future__ import annotations

from typing import Any

import yaml
from pydantic import TypeAdapter

from agents.person.conditions import Scope, Verdict, evaluate
from agents.person.config import EngineConfig
from agents.person.event_index import backfill, specs_for
from agents.person.history import add_totals, remember_event
from agents.person.state_codec import events as recent_events
from schemas.campaigns import Condition
from schemas.person import Event, PersonState

T0 = 1_772_442_000.0
D = 86400.0
_CONDITION = TypeAdapter(Condition)


def person(attributes: dict[str, Any] | None = None, events: list[tuple[str, float, dict]] = ()) -> PersonState:
    state = PersonState(person="ana", first_seen=T0, attributes=attributes or {})
    for name, at, data in events:
        add_totals(state, name, T0 + at)
        remember_event(state, Event(name=name, at=T0 + at, data=data), EngineConfig())
    return state


def check(text: str, state: PersonState, at: float, **scope: float) -> Verdict:
    """Evaluate with the exact indexes the condition needs, as a loaded campaign would have them."""
    condition = _CONDITION.validate_python(yaml.safe_load(text))
    for spec in specs_for([(condition, "events_after" in scope)]):
        state.matches[spec.key] = backfill(
            spec, recent_events(state), state.totals.get(spec.event), None
        )
    return evaluate(condition, Scope(state, T0 + at, **scope))


def test_attribute_operators() -> None:
    ana = person({"plan": "pro", "seats": 5, "tags": ["beta"]})
    assert check("{attribute: plan, eq: pro}", ana, 0).holds
    assert check("{attribute: plan, in: [pro, team]}", ana, 0).holds
    assert check("{attribute: seats, gte: 5, lt: 10}", ana, 0).holds
    assert check("{attribute: tags, contains: beta}", ana, 0).holds
    assert check("{attribute: missing, ne: x}", ana, 0).holds
    assert not check("{attribute: missing, exists: true}", ana, 0).holds


def test_older_than_flips_at_the_timestamp_plus_the_span_for_unix_and_iso_values() -> None:
    for value in (T0, "2026-03-02T09:00:00Z"):
        ana = person({"last_login_at": value})
        assert check("{attribute: last_login_at, older_than: 10d}", ana, D) == Verdict(False, T0 + 10 * D)
        assert check("{attribute: last_login_at, older_than: 10d}", ana, 10 * D) == Verdict(True, None)


def test_within_next_holds_in_the_span_before_the_moment() -> None:
    ana = person({"ends_at": T0 + 10 * D})
    assert check("{attribute: ends_at, within_next: 3d}", ana, D) == Verdict(False, T0 + 7 * D)
    assert check("{attribute: ends_at, within_next: 3d}", ana, 8 * D) == Verdict(True, T0 + 10 * D)


def test_event_count_within_a_window_flips_when_the_oldest_leaves_it() -> None:
    ana = person(events=[("view", 0, {"p": 1}), ("view", D, {"p": 1}), ("view", 2 * D, {"p": 2})])
    cond = "{event: view, where: {p: 1}, count: {gte: 2}, within: 7d}"
    assert check(cond, ana, 3 * D) == Verdict(True, T0 + 7 * D)
    assert not check(cond, ana, 7 * D).holds


def test_since_entry_counts_only_events_after_entry() -> None:
    ana = person(events=[("done", 0, {})])
    assert not check("{event: done, since: entry}", ana, D, entered_at=T0 + 60).holds
    assert check("{event: done}", ana, D, entered_at=T0 + 60).holds


def test_inactivity_counts_from_the_later_of_the_last_event_and_first_seen() -> None:
    fresh = person()
    assert check("{not_performed: login, for: 7d}", fresh, D) == Verdict(False, T0 + 7 * D)
    returning = person(events=[("login", 2 * D, {})])
    assert check("{not_performed: login, for: 7d}", returning, 8 * D) == Verdict(False, T0 + 9 * D)
    assert check("{not_performed: login, for: 7d}", returning, 9 * D).holds


def test_all_any_not_combine_and_keep_the_earliest_flip() -> None:
    ana = person({"plan": "trial", "ends_at": T0 + 10 * D})
    both = "{all: [{attribute: plan, eq: trial}, {not: {attribute: ends_at, within_next: 3d}}]}"
    assert check(both, ana, D) == Verdict(True, T0 + 7 * D)
    assert check("{any: [{attribute: plan, eq: pro}, {segment: vip}]}", ana, D) == Verdict(False)


def test_where_accepts_operators_and_nested_keys() -> None:
    ana = person(events=[("purchase", 0, {"amount": 120, "address": {"city": "Oslo"}})])
    assert check("{event: purchase, where: {amount: {gt: 100}, address.city: Oslo}}", ana, D).holds
