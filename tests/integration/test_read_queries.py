"""The read side's queries on PostgreSQL: activity pages, profiles, campaign metrics, segments."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from agents.projector import queries
from agents.sender import outbox, outcomes
from schemas.commands import Activity, JourneyEvent, PersonSnapshot, SendEmail
from streams.database import DEFAULT_APP_ID, create_pool

pytestmark = pytest.mark.integration

T0 = 1_772_442_000.0


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(database_url, DEFAULT_APP_ID, max_size=2)
    await pool.execute(
        "TRUNCATE people, segment_members, activity, event_catalog, outbox, message_events,"
        " journey_events, journey_steps, current_journeys"
    )
    yield pool
    await pool.close()


def line(person: str, at: float, kind: str = "track", summary: str = "", **changes) -> Activity:
    return Activity(person=person, at=at, input_kind=kind, summary=summary or kind, changes=changes)


def send(message_id: str, person: str, step: str, reason: str) -> SendEmail:
    return SendEmail(
        message_id=message_id, person=person, to=f"{person}@x.io", template=f"t-{step}",
        campaign_id="welcome", campaign_version="v1", journey_id=f"j-{person}", step=step,
        decided_at=T0, reason=reason,
    )


def journey(event: str, person: str, campaign: str = "welcome") -> JourneyEvent:
    return JourneyEvent(event=event, person=person, campaign_id=campaign, campaign_version="v1",
                        journey_id=f"j-{person}-{campaign}", at=T0, reason=f"{event} because")


async def test_activity_is_newest_first_and_pages_back_with_before(pool, project) -> None:
    await project(pool, [line("ana", T0 + i, summary=f"n{i}") for i in range(5)])
    first = await queries.recent_activity(pool, limit=2)
    second = await queries.recent_activity(pool, limit=2, before=first[-1].id)
    assert [a.summary for a in first + second] == ["n4", "n3", "n2", "n1"]


async def test_activity_filters_by_person_and_kind_and_keeps_what_changed(pool, project) -> None:
    await project(pool, [
        line("ana", T0, "identify", attributes={"plan": [None, "pro"]}),
        line("bo", T0 + 1, "identify"),
        line("ana", T0 + 2, "track"),
    ])
    [entry] = await queries.recent_activity(pool, person="ana", kind="identify")
    assert (entry.person, entry.at, entry.kind, entry.detail) == ("ana", T0, "identify", {"attributes": {"plan": [None, "pro"]}})


async def test_following_returns_only_what_arrived_after_an_id_oldest_first(pool, project) -> None:
    await project(pool, [line("ana", T0, summary="old")])
    [seen] = await queries.recent_activity(pool)
    await project(pool, [line("ana", T0 + 1, summary="new1"), line("bo", T0 + 2, summary="new2")])
    assert [a.summary for a in await queries.activity_after(pool, seen.id)] == ["new1", "new2"]
    assert [a.summary for a in await queries.activity_after(pool, seen.id, person="bo")] == ["new2"]


async def test_a_profile_has_attributes_segments_journeys_messages_with_reasons_and_activity(pool, project) -> None:
    await project(pool, [
        PersonSnapshot(person="ana", at=T0, email="ana@x.io", attributes={"plan": "pro"}, segments={"pro": T0}),
        line("ana", T0, "identify"),
    ])
    await project(pool, [journey("entered", "ana")])
    await outbox.insert_sends(pool, [send("m1", "ana", "0", "entered welcome on signed_up")], now=T0)
    await outbox.record_outcomes(pool, "test/0", [outcomes.sent("m1", "250 ok")], now=T0 + 1)
    profile = await queries.read_profile(pool, "ana")
    assert profile is not None
    assert (profile.exists, profile.email, profile.attributes) == (True, "ana@x.io", {"plan": "pro"})
    assert [(s.segment, s.entered_at) for s in profile.segments] == [("pro", T0)]
    assert [(j.campaign_id, j.event, j.reason) for j in profile.journeys] == [("welcome", "entered", "entered because")]
    [message] = profile.messages
    assert (message.message_id, message.status, message.reason) == ("m1", "sent", "entered welcome on signed_up")
    assert [e["status"] for e in message.timeline] == ["queued", "sent"]
    assert [a.kind for a in profile.activity] == ["identify"]


async def test_nobody_has_no_profile(pool) -> None:
    assert await queries.read_profile(pool, "nobody") is None


async def test_campaign_metrics_count_journeys_and_each_steps_messages(pool, project) -> None:
    await project(pool, [
        journey("entered", "ana"), journey("completed", "ana"), journey("converted", "ana"),
        journey("entered", "bo"), journey("entered", "cy"), journey("exited", "cy"),
    ])
    await outbox.insert_sends(pool, [send("m1", "ana", "0", "r"), send("m2", "bo", "0", "r"), send("m3", "ana", "1", "r")], now=T0)
    await outbox.claim(pool, "test/0", 10, lease_seconds=60, now=T0)
    await outbox.record_outcomes(pool, "test/0", [
        outcomes.sent("m1", "250"), outcomes.sent("m2", "250"), outcomes.failed("m3", "550 no such user"),
    ], now=T0)
    for status in ("opened", "opened", "clicked"):  # two opens of one message count once
        await outbox.record_event(pool, "m1", status, now=T0)
    [welcome] = await queries.campaign_metrics(pool)
    assert (welcome.entered, welcome.in_progress, welcome.completed, welcome.exited, welcome.converted) == (3, 1, 1, 1, 1)
    first, second = welcome.steps
    assert (first.step, first.total, first.sent, first.failed, first.opened, first.clicked) == ("0", 2, 2, 0, 1, 1)
    assert (second.step, second.total, second.pending, second.sent, second.failed) == ("1", 1, 0, 0, 1)


async def test_segments_count_members_and_list_them_by_id_in_pages(pool, project) -> None:
    await project(pool, [
        PersonSnapshot(person=p, at=T0, segments={"pro": T0, **({"vip": T0} if p == "ana" else {})})
        for p in ("cy", "ana", "bo")
    ])
    assert [(c.id, c.members) for c in await queries.segment_counts(pool)] == [("pro", 3), ("vip", 1)]
    page = await queries.segment_members(pool, "pro", limit=2)
    rest = await queries.segment_members(pool, "pro", limit=2, after=page[-1].person)
    assert [m.person for m in page] + [m.person for m in rest] == ["ana", "bo", "cy"]
