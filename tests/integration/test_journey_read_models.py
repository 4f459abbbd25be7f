"""Journey read models the console reads: where each journey is now, the steps it took and
what each choice saw, why each message was sent, and the inputs kept for a replayable export.

The journeys below are the welcome campaign: send welcome (step 0), wait 48 h (1), then a
branch (2) on a key action: celebrate (2.0.0) or getting_started (2.1.0)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from agents.projector import queries
from agents.sender import outbox
from schemas.commands import Activity, JourneyEvent, SendEmail
from streams.database import DEFAULT_APP_ID, create_pool

pytestmark = pytest.mark.integration

T0 = 1_772_442_000.0
H48 = 48 * 3600.0


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(database_url, DEFAULT_APP_ID, max_size=2)
    await pool.execute(
        "TRUNCATE activity, outbox, message_events, journey_events, journey_steps, current_journeys"
    )
    yield pool
    await pool.close()


def event(kind: str, person: str, at: float, step: str | None = None, *, position: str | None = None,
          resume_at: float | None = None, step_kind: str | None = None, reason: str = "",
          **detail: object) -> JourneyEvent:
    return JourneyEvent(
        event=kind, person=person, campaign_id="welcome", campaign_version="v1",
        journey_id=f"j-{person}", at=at, reason=reason, step=step, step_kind=step_kind,
        detail=detail, position=position, resume_at=resume_at,
    )


def entered_and_waiting(person: str) -> list[JourneyEvent]:
    """Entered on signed_up, sent the welcome, now waiting 48 h at step 1."""
    return [
        event("entered", person, T0, position="0", reason="signed_up", trigger={"event": "signed_up"}),
        event("step", person, T0, "0", step_kind="send", position="1", reason="sent welcome",
              template="welcome", message_id=f"m-{person}-0"),
        event("step", person, T0, "1", step_kind="wait", position="1", resume_at=T0 + H48,
              reason="waiting 48h", until=T0 + H48),
    ]


def celebrated(person: str) -> list[JourneyEvent]:
    """Woke after 48 h, found the key action, sent celebrate and finished."""
    at = T0 + H48
    return [
        event("step", person, at, "2", step_kind="branch", position="2.0.0", reason="then", arm="then",
              condition={"event": "first_key_action", "since": "entry", "count": 1, "holds": True}),
        event("step", person, at, "2.0.0", step_kind="send", position="2.0.0", reason="sent celebrate",
              template="celebrate", message_id=f"m-{person}-2.0.0"),
        event("completed", person, at, reason="all steps done"),
    ]


def exited_while_waiting(person: str) -> list[JourneyEvent]:
    return [event("exited", person, T0 + 60, "1", reason="exit: upgraded_plan",
                  condition={"event": "upgraded_plan", "holds": True})]


async def test_people_waiting_at_a_step_are_counted_with_their_next_wake_up(pool, project):
    await project(pool, entered_and_waiting("ana") + entered_and_waiting("bo") + entered_and_waiting("cy"))
    await project(pool, celebrated("bo") + exited_while_waiting("cy"))
    [waiting] = await queries.journeys_waiting(pool, "welcome")
    assert (waiting.campaign_version, waiting.position, waiting.journeys) == ("v1", "1", 1)
    assert waiting.next_wake_up == T0 + H48


async def test_the_campaign_flow_counts_each_step_now_reached_exited_and_per_branch_arm(pool, project):
    await project(pool, entered_and_waiting("ana") + entered_and_waiting("bo") + entered_and_waiting("cy"))
    await project(pool, celebrated("bo") + exited_while_waiting("cy"))
    flow = await queries.campaign_flow(pool, "welcome")
    assert [(s.step, s.step_kind, s.now, s.reached, s.exited, s.arms) for s in flow.steps] == [
        ("0", "send", 0, 3, 0, {}),
        ("1", "wait", 1, 3, 1, {}),
        ("2", "branch", 0, 1, 0, {"then": 1}),
        ("2.0.0", "send", 0, 1, 0, {}),
    ]


async def test_a_persons_journeys_show_where_each_stands(pool, project):
    await project(pool, entered_and_waiting("ana") + entered_and_waiting("bo"))
    await project(pool, celebrated("bo"))
    [ana] = await queries.person_journeys(pool, "ana")
    assert (ana.status, ana.position, ana.resume_at, ana.entered_at) == ("active", "1", T0 + H48, T0)
    [bo] = await queries.person_journeys(pool, "bo")
    assert (bo.status, bo.position, bo.resume_at, bo.ended_at, bo.end_reason) == (
        "completed", None, None, T0 + H48, "all steps done")


async def test_a_messages_why_holds_the_decision_and_every_step_with_what_it_saw(pool, project):
    await project(pool, entered_and_waiting("bo") + celebrated("bo"))
    await outbox.insert_sends(pool, [SendEmail(
        message_id="m-bo-2.0.0", person="bo", to="bo@x.io", template="celebrate", campaign_id="welcome",
        campaign_version="v1", journey_id="j-bo", step="2.0.0", decided_at=T0 + H48,
        reason="welcome v1: step 2.0.0 after signed_up",
    )], now=T0 + H48)
    why = await queries.message_provenance(pool, "m-bo-2.0.0")
    assert why is not None and why.journey is not None
    assert (why.message.status, why.message.reason, why.campaign_version) == (
        "queued", "welcome v1: step 2.0.0 after signed_up", "v1")
    assert why.command["to"] == "bo@x.io"
    assert [s.step for s in why.journey.steps] == ["0", "1", "2", "2.0.0"]
    branch = why.journey.steps[2]
    assert branch.detail["arm"] == "then" and branch.detail["condition"]["holds"] is True
    assert [(m.event, m.reason) for m in why.journey.milestones] == [
        ("entered", "signed_up"), ("completed", "all steps done")]
    assert why.journey.milestones[0].detail == {"trigger": {"event": "signed_up"}}


async def test_an_exit_keeps_the_step_it_happened_at_and_the_condition_that_held(pool, project):
    await project(pool, entered_and_waiting("cy") + exited_while_waiting("cy"))
    why = await queries.journey_provenance(pool, "j-cy")
    assert why is not None and why.journey.status == "exited"
    exited = why.milestones[-1]
    assert (exited.event, exited.step, exited.detail["condition"]["event"]) == ("exited", "1", "upgraded_plan")


async def test_older_projections_replayed_after_newer_ones_do_not_move_a_journey_back(pool, project):
    await project(pool, entered_and_waiting("bo"), source="0:1")
    await project(pool, celebrated("bo"), source="0:2")
    await project(pool, entered_and_waiting("bo"), source="0:1")
    [bo] = await queries.person_journeys(pool, "bo")
    assert (bo.status, bo.position) == ("completed", None)


async def test_a_conversion_after_the_journey_ended_keeps_it_ended(pool, project):
    await project(pool, entered_and_waiting("bo") + celebrated("bo"))
    await project(pool, [event("converted", "bo", T0 + H48 + 10, reason="goal reached")])
    [bo] = await queries.person_journeys(pool, "bo")
    assert (bo.status, bo.converted_at) == ("completed", T0 + H48 + 10)
    [metrics] = await queries.campaign_metrics(pool)
    assert (metrics.entered, metrics.completed, metrics.converted, metrics.in_progress) == (1, 1, 1, 0)


async def test_a_step_seen_again_keeps_its_latest_outcome(pool, project):
    waiting = event("step", "ana", T0, "1", step_kind="wait_until", position="1", reason="waiting for the condition")
    holds = event("step", "ana", T0 + 30, "1", step_kind="wait_until", position="2", reason="condition holds")
    await project(pool, [waiting])
    await project(pool, [holds])
    await project(pool, [waiting])  # a replay of the older one
    why = await queries.journey_provenance(pool, "j-ana")
    assert why is not None and [(s.step, s.reason) for s in why.steps] == [("1", "condition holds")]


async def test_recorded_inputs_come_back_in_arrival_order_by_person_and_in_pages(pool, project):
    def line(person: str, n: int) -> Activity:
        return Activity(person=person, at=T0 + n, input_kind="track", summary=f"n{n}",
                        input={"kind": "track", "person": person, "at": T0 + n, "name": f"e{n}"})
    await project(pool, [line("ana", 0), line("bo", 1), line("ana", 2)])
    await project(pool, [Activity(person="ana", at=T0 + 3, input_kind="wake", summary="timer")])

    async def names(**query) -> list[str]:
        return [item["name"] for _, item in await queries.recorded_inputs(pool, **query)]

    assert await names() == ["e0", "e1", "e2"]
    assert await names(person="ana") == ["e0", "e2"]
    page = await queries.recorded_inputs(pool, limit=2)
    assert await names(after=page[-1][0]) == ["e2"]
    assert await names(since=T0 + 1, until=T0 + 2) == ["e1"]
