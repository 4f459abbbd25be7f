"""The decision core, one behaviour per test: inputs in, state and commands out, clock injected."""

from __future__ import annotations

import yaml

from agents.person.campaign_set import CampaignSet
from agents.person.config import EngineConfig
from agents.person.engine import decide
from agents.person.state_codec import decode_state, encode_state, events
from schemas.campaigns import Campaign, SegmentDefinition
from schemas.commands import CallWebhook, Command, JourneyEvent, PersonSnapshot, SendEmail
from schemas.inputs import Delete, Delivery, Identify, Input, Suppress, Track, Unsubscribe, Wake
from schemas.person import PersonState

T0 = 1_772_442_000.0  # 2026-03-02T09:00:00Z
H, D = 3600.0, 86400.0


def campaign(text: str) -> Campaign:
    return Campaign.model_validate(yaml.safe_load(text))


def build(*texts: str, segments: tuple[str, ...] = ()) -> CampaignSet:
    return CampaignSet.build(
        [campaign(t) for t in texts],
        segments=[SegmentDefinition.model_validate(yaml.safe_load(s)) for s in segments],
    )


def identify(at: float, **attributes: object) -> Identify:
    return Identify(person="ana", at=T0 + at, attributes=attributes)


def track(at: float, name: str, event_id: str | None = None, **data: object) -> Track:
    return Track(person="ana", at=T0 + at, name=name, data=data, event_id=event_id)


class Person:
    """Drives one person through `decide` the way the shell does, collecting commands."""

    def __init__(self, campaigns: CampaignSet, config: EngineConfig = EngineConfig()) -> None:
        self.campaigns, self.config = campaigns, config
        self.state: PersonState | None = None
        self.commands: list[Command] = []

    def send(self, item: Input, now: float | None = None) -> list[Command]:
        self.state, commands = decide(
            self.state, item, self.campaigns, item.at if now is None else now, self.config
        )
        self.commands += commands
        return commands

    def run_until(self, at: float) -> None:
        """Deliver each wake exactly when its timer falls due, up to T0 + at."""
        while self.state and self.state.timers:
            timer_id, due = min(self.state.timers.items(), key=lambda kv: kv[1])
            if due > T0 + at:
                return
            self.send(Wake(person="ana", at=due, timer_id=timer_id, due=due))

    def sent(self) -> list[tuple[str, float]]:
        return [(c.template, c.decided_at - T0) for c in self.commands if isinstance(c, SendEmail)]

    def journey_events(self) -> list[str]:
        return [c.event for c in self.commands if isinstance(c, JourneyEvent) and c.event != "step"]


DRIP = """
id: drip
trigger: {event: signed_up}
steps: [{send: one}, {wait: 1d}, {send: two}]
"""


def test_a_wait_becomes_a_timer_and_its_wake_sends_the_next_step() -> None:
    ana = Person(build(DRIP))
    ana.send(identify(0, email="ana@example.com"))
    ana.send(track(0, "signed_up"))
    assert ana.state is not None and list(ana.state.timers.values()) == [T0 + D]
    ana.run_until(2 * D)
    assert ana.sent() == [("one", 0), ("two", D)]
    assert ana.journey_events() == ["entered", "completed"]


def test_a_stale_or_duplicate_wake_changes_nothing() -> None:
    ana = Person(build(DRIP))
    ana.send(track(0, "signed_up"))
    assert ana.state is not None
    (timer_id,) = ana.state.timers
    assert ana.send(Wake(person="ana", at=T0 + H, timer_id=timer_id, due=T0 + H)) == []
    ana.run_until(2 * D)
    again = Wake(person="ana", at=T0 + D, timer_id=timer_id, due=T0 + D)
    assert ana.send(again, now=T0 + 2 * D) == []
    assert ana.sent() == [("one", 0), ("two", D)]


def test_an_overdue_timer_fires_at_its_due_time_when_the_wake_comes_late() -> None:
    ana = Person(build(DRIP))
    ana.send(track(0, "signed_up"))
    assert ana.state is not None
    (timer_id,) = ana.state.timers
    ana.send(Wake(person="ana", at=T0 + 3 * D, timer_id=timer_id, due=T0 + D), now=T0 + 3 * D)
    assert ana.sent() == [("one", 0), ("two", D)]


def test_an_input_that_overtakes_a_due_wake_fires_the_timer_first() -> None:
    ana = Person(build(DRIP + "exit: {event: upgraded}\n"))
    ana.send(track(0, "signed_up"))
    ana.send(track(2 * D, "upgraded"))
    assert ana.sent() == [("one", 0), ("two", D)]
    assert ana.journey_events() == ["entered", "completed"]


def test_send_commands_carry_a_deterministic_id_the_address_and_the_reason() -> None:
    first, second = Person(build(DRIP)), Person(build(DRIP))
    for person in (first, second):
        person.send(identify(0, email="ana@example.com", first_name="Ana"))
        person.send(track(0, "signed_up", plan="pro"))
    send = next(c for c in first.commands if isinstance(c, SendEmail))
    twin = next(c for c in second.commands if isinstance(c, SendEmail))
    assert send.message_id == twin.message_id
    assert send.to == "ana@example.com"
    assert "campaign drip" in send.reason and "signed_up" in send.reason
    assert send.context.customer["first_name"] == "Ana"
    assert send.context.event == {"plan": "pro"} and send.context.event_name == "signed_up"
    assert send.context.campaign["id"] == "drip"
    assert [r.name for r in send.context.history.recent] == ["signed_up"]


def test_reentry_once_starts_only_the_first_journey() -> None:
    ana = Person(build("id: c\ntrigger: {event: go}\nsteps: [{send: hi}]"))
    ana.send(track(0, "go"))
    ana.send(track(D, "go"))
    assert ana.sent() == [("hi", 0)]


def test_reentry_always_runs_journeys_side_by_side() -> None:
    ana = Person(build("id: c\ntrigger: {event: go}\nreentry: always\nsteps: [{wait: 1h}, {send: hi}]"))
    ana.send(track(0, "go"))
    ana.send(track(60, "go"))
    ana.run_until(D)
    assert ana.sent() == [("hi", H), ("hi", H + 60)]


def test_reentry_after_waits_that_long_since_the_previous_entry() -> None:
    ana = Person(build("id: c\ntrigger: {event: go}\nreentry: {after: 1d}\nsteps: [{send: hi}]"))
    for at in (0, H, D - 1, D):
        ana.send(track(at, "go"))
    assert ana.sent() == [("hi", 0), ("hi", D)]


def test_the_filter_is_checked_at_entry() -> None:
    ana = Person(build("id: c\ntrigger: {event: go}\nfilter: {attribute: plan, eq: pro}\nsteps: [{send: hi}]"))
    ana.send(identify(0, plan="free"))
    ana.send(track(H, "go"))
    assert ana.sent() == [] and ana.journey_events() == []


def test_exit_ends_the_journey_and_the_goal_counts_a_conversion_once() -> None:
    ana = Person(build(DRIP + "exit: {event: upgraded}\ngoal: {event: upgraded, within: 7d}\n"))
    ana.send(track(0, "signed_up"))
    ana.send(track(H, "upgraded"))
    ana.send(track(2 * H, "upgraded"))
    ana.run_until(3 * D)
    assert ana.sent() == [("one", 0)]
    assert ana.journey_events() == ["entered", "converted", "exited"]


def test_a_goal_reached_after_the_journey_completed_still_converts() -> None:
    ana = Person(build(DRIP + "goal: {event: upgraded, within: 7d}\n"))
    ana.send(track(0, "signed_up"))
    ana.run_until(2 * D)
    ana.send(track(5 * D, "upgraded"))
    assert ana.journey_events() == ["entered", "completed", "converted"]


def test_a_goal_after_its_window_does_not_convert_and_the_journey_is_dropped() -> None:
    ana = Person(build(DRIP + "goal: {event: upgraded, within: 3d}\n"))
    ana.send(track(0, "signed_up"))
    ana.run_until(2 * D)
    ana.send(track(4 * D, "upgraded"))
    assert ana.journey_events() == ["entered", "completed"]
    assert ana.state is not None and ana.state.journeys == []


def test_events_before_entry_do_not_count_for_exit() -> None:
    ana = Person(build(DRIP + "exit: {event: upgraded}\n"))
    ana.send(track(0, "upgraded"))
    ana.send(track(H, "signed_up"))
    ana.run_until(2 * D)
    assert ana.sent() == [("one", H), ("two", D + H)]


def test_wait_until_goes_on_when_the_condition_holds() -> None:
    ana = Person(build("id: c\ntrigger: {event: go}\nsteps: [{wait_until: {event: done, since: entry, max: 3d}}, {send: next}]"))
    ana.send(track(0, "go"))
    ana.send(track(D, "done"))
    assert ana.sent() == [("next", D)]


def test_wait_until_goes_on_when_max_runs_out() -> None:
    ana = Person(build("id: c\ntrigger: {event: go}\nsteps: [{wait_until: {event: done, since: entry, max: 3d}}, {send: next}]"))
    ana.send(track(0, "go"))
    ana.run_until(5 * D)
    assert ana.sent() == [("next", 3 * D)]


def test_a_time_window_holds_the_step_until_it_opens_in_the_persons_zone() -> None:
    window = '{days: [mon, tue, wed, thu, fri], from: "09:00", to: "17:00", fallback_timezone: UTC}'
    ana = Person(build(f"id: c\ntrigger: {{event: go}}\nsteps: [{{time_window: {window}}}, {{send: hi}}]"))
    ana.send(identify(0, timezone="Europe/Berlin"))
    # Friday 2026-03-06 18:30 in Berlin: held until Monday 09:00 CET (08:00 UTC).
    ana.send(track(4 * D + 8 * H + 30 * 60, "go"))
    ana.run_until(10 * D)
    assert ana.sent() == [("hi", 7 * D - H)]


def test_random_cohorts_are_stable_per_person() -> None:
    text = "id: c\ntrigger: {event: go}\nsteps: [{random: [{percent: 50, steps: [{send: a}]}, {percent: 50, steps: [{send: b}]}]}]"
    runs = []
    for _ in range(2):
        ana = Person(build(text))
        ana.send(track(0, "go"))
        runs.append(ana.sent())
    assert runs[0] == runs[1] and len(runs[0]) == 1


def test_set_updates_attributes_and_webhook_emits_a_call_without_waiting() -> None:
    ana = Person(build(
        "id: c\ntrigger: {event: go}\nsteps: [{set: {stage: warm}}, "
        "{webhook: {url: 'https://hooks.example.com/x', headers: {X-Key: k}}}, {send: hi}]"
    ))
    ana.send(track(0, "go"))
    assert ana.state is not None and ana.state.attributes["stage"] == "warm"
    call = next(c for c in ana.commands if isinstance(c, CallWebhook))
    assert call.url == "https://hooks.example.com/x" and call.headers == {"X-Key": "k"}
    assert call.body["campaign"]["id"] == "c" and call.body["customer"] == {"stage": "warm"}
    assert ana.sent() == [("hi", 0)]


def test_an_exit_step_ends_the_journey() -> None:
    ana = Person(build("id: c\ntrigger: {event: go}\nsteps: [{exit: true}, {send: never}]"))
    ana.send(track(0, "go"))
    assert ana.sent() == [] and ana.journey_events() == ["entered", "exited"]


def test_a_journey_keeps_the_version_it_entered_with() -> None:
    old = "id: c\ntrigger: {event: go}\nsteps: [{wait: 1d}, {send: old_mail}]"
    new = "id: c\ntrigger: {event: go}\nsteps: [{wait: 1d}, {send: new_mail}]"
    ana = Person(build(old))
    ana.send(track(0, "go"))
    ana.campaigns = CampaignSet.build([campaign(new)], previous_versions=[campaign(old)])
    ana.run_until(2 * D)
    assert ana.sent() == [("old_mail", D)]


def test_a_removed_campaign_ends_its_journeys_at_the_next_input() -> None:
    ana = Person(build(DRIP))
    ana.send(track(0, "signed_up"))
    ana.campaigns = build()
    ana.send(identify(H, plan="pro"))
    assert ana.journey_events() == ["entered", "exited"]
    exited = [c for c in ana.commands if isinstance(c, JourneyEvent)][-1]
    assert exited.reason == "campaign removed"
    assert ana.state is not None and ana.state.journeys == [] and ana.state.timers == {}


def test_delete_erases_the_person_and_leaves_their_running_journeys() -> None:
    ana = Person(build(DRIP))
    ana.send(track(0, "signed_up"))
    commands = ana.send(Delete(person="ana", at=T0 + H))
    assert ana.state is None
    assert [c.event for c in commands if isinstance(c, JourneyEvent)] == ["exited"]
    assert [(c.kind, c.deleted) for c in commands if isinstance(c, PersonSnapshot)] == [("person_snapshot", True)]


def test_the_same_event_id_twice_yields_one_email() -> None:
    ana = Person(build("id: c\ntrigger: {event: go}\nreentry: always\nsteps: [{send: hi}]"))
    ana.send(track(0, "go", event_id="e1"))
    ana.send(track(60, "go", event_id="e1"))
    assert ana.sent() == [("hi", 0)]
    assert ana.state is not None and ana.state.totals["go"].count == 1


def test_a_suppressed_person_gets_no_email_and_their_events_are_ignored() -> None:
    ana = Person(build(DRIP))
    ana.send(Suppress(person="ana", at=T0))
    ana.send(track(0, "signed_up"))
    ana.run_until(2 * D)
    assert ana.sent() == [] and ana.journey_events() == []
    assert ana.state is not None and ana.state.recent == []


def test_message_conditions_read_delivery_outcomes() -> None:
    ana = Person(build(
        "id: c\ntrigger: {event: go}\nsteps: [{send: intro}, {wait: 1d}, "
        "{branch: {if: {message: intro, opened: true}, then: [{send: more}], else: [{send: resend}]}}]"
    ))
    ana.send(track(0, "go"))
    intro = next(c for c in ana.commands if isinstance(c, SendEmail))
    ana.send(Delivery(person="ana", at=T0 + H, message_id=intro.message_id, status="opened"))
    ana.run_until(2 * D)
    assert ana.sent() == [("intro", 0), ("more", D)]


def test_a_date_trigger_fires_at_the_moment_and_moves_when_the_attribute_changes() -> None:
    ana = Person(build("id: c\ntrigger: {date: {attribute: ends_at, offset: -1d}}\nsteps: [{send: soon}]"))
    ana.send(identify(0, ends_at=T0 + 5 * D))
    ana.send(identify(D, ends_at="2026-03-12T09:00:00Z"))
    ana.run_until(20 * D)
    assert ana.sent() == [("soon", 9 * D)]


def test_a_date_moment_already_past_when_it_becomes_known_does_not_fire() -> None:
    ana = Person(build("id: c\ntrigger: {date: {attribute: ends_at, offset: -1d}}\nsteps: [{send: soon}]"))
    ana.send(identify(3 * D, ends_at=T0 + 3 * D))
    ana.run_until(20 * D)
    assert ana.sent() == []


def test_segment_membership_flips_on_time_and_triggers_on_entry() -> None:
    ana = Person(build(
        "id: c\ntrigger: {segment: quiet}\nsteps: [{send: miss_you}]",
        segments=("{id: quiet, when: {not_performed: login, for: 7d}}",),
    ))
    ana.send(identify(0, email="ana@example.com"))
    ana.send(track(D, "login"))
    assert ana.state is not None and ana.state.timers == {"segment:quiet": T0 + 8 * D}
    ana.run_until(20 * D)
    assert ana.sent() == [("miss_you", 8 * D)]
    assert "quiet" in ana.state.segments


def test_attribute_changed_triggers_on_a_change_but_not_on_creation() -> None:
    ana = Person(build("id: c\ntrigger: {attribute_changed: plan}\nreentry: always\nsteps: [{send: changed}]"))
    ana.send(identify(0, plan="trial"))
    ana.send(identify(H, plan="trial"))
    ana.send(identify(D, plan="pro"))
    assert ana.sent() == [("changed", D)]


def test_history_is_bounded_by_the_config_but_aggregates_keep_counting() -> None:
    ana = Person(build(), EngineConfig(history_limit=3))
    for i in range(5):
        ana.send(track(i, "view", n=i))
    assert ana.state is not None
    assert [e.data["n"] for e in events(ana.state)] == [2, 3, 4]
    assert ana.state.totals["view"].count == 5


def test_the_core_never_touches_last_position_and_state_round_trips_through_its_codec() -> None:
    ana = Person(build(DRIP))
    ana.send(track(0, "signed_up", plan="trial"))
    assert ana.state is not None
    ana.state.last_position = (3, 41)
    ana.send(track(H, "other", event_id="e-1"))
    assert ana.state.last_position == (3, 41)
    assert decode_state(encode_state(ana.state)) == ana.state


def test_decide_gives_back_the_state_it_was_given_changed_in_place() -> None:
    ana = Person(build(DRIP))
    ana.send(track(0, "signed_up"))
    before = ana.state
    assert before is not None
    after, _ = decide(before, track(H, "x"), ana.campaigns, T0 + H)
    assert after is before and before.totals["x"].count == 1


def test_an_identify_marked_update_only_does_not_create_a_person():
    ana = Person(build())
    ana.send(Identify(person="ana", at=T0, attributes={"plan": "pro"}, update_only=True))
    assert ana.state is None and ana.commands == []


def test_an_identify_marked_update_only_updates_an_existing_person():
    ana = Person(build())
    ana.send(identify(0, plan="trial"))
    ana.send(Identify(person="ana", at=T0 + 1, attributes={"plan": "pro"}, update_only=True))
    assert ana.state is not None and ana.state.attributes["plan"] == "pro"


def test_an_unsubscribe_for_someone_unknown_creates_nobody():
    ana = Person(build())
    ana.send(Unsubscribe(person="ana", at=T0))
    assert ana.state is None
