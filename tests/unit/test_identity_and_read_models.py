"""Identity (merges, anonymous ids, devices, suppression, deletion) and the read-model commands
(activity, person snapshots) that every decision issues."""

from __future__ import annotations

import yaml

from agents.person.campaign_set import CampaignSet
from agents.person.config import EngineConfig
from agents.person.engine import decide
from agents.person.state_codec import events, state_to_builtins
from schemas.campaigns import Campaign, ComputedAttribute, SegmentDefinition
from schemas.commands import Activity, EmitInput, PersonSnapshot, SendEmail
from schemas.inputs import (
    ANONYMOUS_PREFIX,
    Absorb,
    Delete,
    Devices,
    Identify,
    MergeInto,
    Reevaluate,
    SegmentMembership,
    Suppress,
    Track,
    Wake,
)
from schemas.person import PersonState

T0 = 1_772_442_000.0
NONE = CampaignSet.build([])


def state_of(*inputs, campaigns: CampaignSet = NONE, config: EngineConfig = EngineConfig()):
    state, commands = None, []
    for item in inputs:
        state, new = decide(state, item, campaigns, item.at, config)
        commands += new
    return state, commands


def of(kind, commands):
    return [c for c in commands if isinstance(c, kind)]


def test_anonymous_events_are_tracked_under_the_anon_prefix() -> None:
    assert ANONYMOUS_PREFIX == "anon:"


def test_identify_with_an_anonymous_id_asks_that_person_to_merge_in_once() -> None:
    _, commands = state_of(
        Identify(person="ana", at=T0, anonymous_id="a1"),
        Identify(person="ana", at=T0 + 1, anonymous_id="a1"),
    )
    emitted = [c.input for c in of(EmitInput, commands)]
    assert emitted == [MergeInto(person="anon:a1", at=T0, into="ana")]


def test_merge_into_hands_the_state_over_and_erases_the_secondary() -> None:
    bo, _ = state_of(Identify(person="bo", at=T0, attributes={"plan": "free"}))
    state, commands = decide(bo, MergeInto(person="bo", at=T0 + 1, into="ana"), NONE, T0 + 1)
    assert state is None
    absorb = of(EmitInput, commands)[0].input
    assert isinstance(absorb, Absorb) and absorb.person == "ana" and absorb.source == "bo"
    assert absorb.state["attributes"] == {"plan": "free"}
    assert [s.deleted for s in of(PersonSnapshot, commands)] == [True]


def test_merge_into_someone_unknown_does_nothing() -> None:
    assert decide(None, MergeInto(person="anon:x", at=T0, into="ana"), NONE, T0) == (None, [])


def test_absorb_keeps_the_primarys_attributes_on_conflict() -> None:
    ana, _ = state_of(Identify(person="ana", at=T0, attributes={"plan": "pro"}))
    secondary = PersonState(person="bo", first_seen=T0 - 100, attributes={"plan": "free", "city": "Oslo"})
    ana, _ = decide(ana, Absorb(person="ana", at=T0 + 1, source="bo", state=state_to_builtins(secondary)), NONE, T0 + 1)
    assert ana is not None
    assert ana.attributes == {"plan": "pro", "city": "Oslo"}
    assert ana.first_seen == T0 - 100 and ana.merged_ids == ["bo"]


def test_absorb_interleaves_histories_by_time_and_bounds_them_again() -> None:
    config = EngineConfig(history_limit=3)
    bo, _ = state_of(*(Track(person="bo", at=T0 + i * 2, name="b") for i in range(3)), config=config)
    ana, _ = state_of(*(Track(person="ana", at=T0 + i * 2 + 1, name="a") for i in range(3)), config=config)
    assert bo is not None
    ana, _ = decide(ana, Absorb(person="ana", at=T0 + 9, source="bo", state=state_to_builtins(bo)), NONE, T0 + 9, config)
    assert ana is not None
    assert [(e.name, e.at - T0) for e in events(ana)] == [("a", 3), ("b", 4), ("a", 5)]
    assert ana.totals["a"].count == 3 and ana.totals["b"].count == 3


def test_devices_are_added_updated_and_removed() -> None:
    ana, _ = state_of(
        Devices(person="ana", at=T0, action="add", device_id="d1", platform="ios"),
        Devices(person="ana", at=T0 + 1, action="add", device_id="d1", last_used=T0 + 1),
        Devices(person="ana", at=T0 + 2, action="add", device_id="d2", platform="android"),
        Devices(person="ana", at=T0 + 3, action="remove", device_id="d2"),
    )
    assert ana is not None and list(ana.devices) == ["d1"]
    assert ana.devices["d1"].platform == "ios" and ana.devices["d1"].last_used == T0 + 1


def test_a_suppressed_person_becomes_a_tombstone_and_postgres_forgets_them() -> None:
    ana, commands = state_of(
        Identify(person="ana", at=T0, attributes={"email": "a@x.io", "plan": "pro"}),
        Suppress(person="ana", at=T0 + 1),
    )
    assert ana is not None and ana.suppressed and ana.attributes == {} and ana.email is None
    snapshots = of(PersonSnapshot, commands)
    assert [s.deleted for s in snapshots][-2:] == [True, False] and snapshots[-1].suppressed


def test_a_suppressed_persons_identify_and_track_are_ignored() -> None:
    ana, _ = state_of(Suppress(person="ana", at=T0))
    after, commands = decide(ana, Identify(person="ana", at=T0 + 1, attributes={"plan": "pro"}), NONE, T0 + 1)
    assert after is ana and commands == []
    assert decide(ana, Track(person="ana", at=T0 + 1, name="x"), NONE, T0 + 1) == (ana, [])


def test_unsuppressing_lets_data_in_again() -> None:
    ana, _ = state_of(
        Suppress(person="ana", at=T0), Suppress(person="ana", at=T0 + 1, suppressed=False),
        Identify(person="ana", at=T0 + 2, attributes={"plan": "pro"}),
    )
    assert ana is not None and not ana.suppressed and ana.attributes == {"plan": "pro"}


def test_delete_tells_postgres_to_erase_the_person() -> None:
    state, commands = state_of(Identify(person="ana", at=T0), Delete(person="ana", at=T0 + 1))
    assert state is None and of(PersonSnapshot, commands)[-1].deleted


def test_joining_a_segment_that_is_not_manual_is_ignored() -> None:
    campaigns = CampaignSet.build([], segments=[SegmentDefinition(id="pro", when={"attribute": "plan", "eq": "pro"})])
    ana, _ = state_of(Identify(person="ana", at=T0))
    assert decide(ana, SegmentMembership(person="ana", at=T0, segment="pro"), campaigns, T0) == (ana, [])


def test_a_manual_segment_needs_no_condition_and_a_condition_segment_needs_one() -> None:
    import pydantic
    import pytest

    assert SegmentDefinition(id="vip", manual=True).when is None
    with pytest.raises(pydantic.ValidationError, match="needs `when"):
        SegmentDefinition(id="vip")


# --- read models --------------------------------------------------------------------------


def test_every_input_gives_one_activity_line_with_what_it_changed() -> None:
    ana, _ = state_of(Identify(person="ana", at=T0, attributes={"plan": "trial"}))
    _, commands = decide(ana, Identify(person="ana", at=T0 + 1, attributes={"plan": "pro"}), NONE, T0 + 1)
    [activity] = of(Activity, commands)
    assert activity.summary == "identify; plan: trial -> pro"
    assert activity.changes == {"attributes": {"plan": ["trial", "pro"]}}


def test_a_track_activity_carries_the_event_for_the_catalog() -> None:
    _, commands = state_of(Track(person="ana", at=T0, name="purchase", data={"amount": 5}))
    [activity] = of(Activity, commands)
    assert (activity.event_name, activity.event_type, activity.event_data) == ("purchase", "event", {"amount": 5})
    assert activity.summary == "track purchase {amount: 5}"


def test_the_activity_lists_journeys_segments_and_queued_messages() -> None:
    campaigns = CampaignSet.build(
        [Campaign.model_validate(yaml.safe_load("id: w\ntrigger: {event: go}\nsteps: [{send: hi}]"))],
        segments=[SegmentDefinition(id="goers", when={"event": "go"})],
    )
    _, commands = state_of(Track(person="ana", at=T0, name="go"), campaigns=campaigns)
    [activity] = of(Activity, commands)
    assert activity.changes["segments"] == {"entered": ["goers"], "left": []}
    assert [j["event"] for j in activity.changes["journeys"]] == ["entered", "completed"]
    assert [m["template"] for m in activity.changes["messages"]] == ["hi"]
    assert len(of(SendEmail, commands)) == 1


def test_a_snapshot_is_issued_only_when_profile_or_segments_change() -> None:
    ana, first = state_of(Identify(person="ana", at=T0, attributes={"email": "a@x.io"}))
    assert of(PersonSnapshot, first)[0].email == "a@x.io"
    _, commands = decide(ana, Track(person="ana", at=T0 + 1, name="x"), NONE, T0 + 1)
    assert of(PersonSnapshot, commands) == []


def test_a_wake_or_reevaluation_that_changes_nothing_logs_no_activity() -> None:
    ana, _ = state_of(Identify(person="ana", at=T0))
    assert decide(ana, Reevaluate(person="ana", at=T0 + 1), NONE, T0 + 1)[1] == []
    assert decide(ana, Wake(person="ana", at=T0 + 1, timer_id="x", due=T0), NONE, T0 + 1)[1] == []


# --- computed attributes ------------------------------------------------------------------


def test_a_computed_sum_outlives_the_bounded_history() -> None:
    campaigns = CampaignSet.build(
        [], computed=[ComputedAttribute(id="ltv", event="purchase", aggregate="sum", property="amount")]
    )
    purchases = [Track(person="ana", at=T0 + i, name="purchase", data={"amount": 10}) for i in range(5)]
    ana, _ = state_of(*purchases, campaigns=campaigns, config=EngineConfig(history_limit=2))
    assert ana is not None and len(ana.recent) == 2 and ana.attributes["ltv"] == 50


def test_a_computed_attribute_ignores_events_outside_its_where_and_non_numbers() -> None:
    campaigns = CampaignSet.build([], computed=[
        ComputedAttribute(id="usd", event="purchase", aggregate="sum", property="amount", where={"currency": "USD"})
    ])
    ana, _ = state_of(
        Track(person="ana", at=T0, name="purchase", data={"amount": 10, "currency": "USD"}),
        Track(person="ana", at=T0 + 1, name="purchase", data={"amount": 99, "currency": "EUR"}),
        Track(person="ana", at=T0 + 2, name="purchase", data={"amount": "lots", "currency": "USD"}),
        campaigns=campaigns,
    )
    assert ana is not None and ana.attributes["usd"] == 10


def test_merging_adds_computed_sums() -> None:
    campaigns = CampaignSet.build([], computed=[ComputedAttribute(id="n", event="go", aggregate="count")])
    bo, _ = state_of(Track(person="bo", at=T0, name="go"), campaigns=campaigns)
    ana, _ = state_of(Track(person="ana", at=T0, name="go"), Track(person="ana", at=T0, name="go"), campaigns=campaigns)
    assert bo is not None
    ana, _ = decide(ana, Absorb(person="ana", at=T0 + 1, source="bo", state=state_to_builtins(bo)), campaigns, T0 + 1)
    assert ana is not None and ana.attributes["n"] == 3
