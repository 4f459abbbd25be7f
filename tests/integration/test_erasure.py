"""Erasure in PostgreSQL: after a person is erased, no table or column of the deployment holds
their id, address or attribute values; what only counts (message statuses, journey metrics)
stays; other people are untouched; `nudge gdpr export` shows everything held before."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import asyncpg
import pytest
from click.testing import CliRunner

from agents.broadcast.store import PartitionProgress, save_progress
from agents.person.ids import journey_id, message_id
from agents.projector import queries
from agents.projector.export import export_person
from agents.sender import outbox, outcomes, preferences, suppression
from schemas.commands import Activity, JourneyEvent, PersonSnapshot, RenderContext, SendEmail
from streams.cli import cli
from streams.database import DEFAULT_APP_ID, create_pool

pytestmark = pytest.mark.integration

T0 = 1_772_442_000.0
ZEB, ZEB_EMAIL = "zeb-7f3a", "Zeb.Quill@zmail.test"
# Everything personal about Zeb that the rows below store somewhere.
ZEB_TRACES = (ZEB, ZEB_EMAIL.lower(), "Zebulon", "Quixotown", "ZEBU-77", "zeb.quill")
OLGA, OLGA_EMAIL = "olga-19", "olga@omail.test"


@pytest.fixture
async def pool(fresh_database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(fresh_database_url, DEFAULT_APP_ID, max_size=2)
    yield pool
    await pool.close()


def journey_of(person: str) -> str:
    """The journey id the core would give (a hash: ids never spell the person)."""
    return journey_id(person, "welcome", 1, T0, T0 + 1)


def message_of(person: str, n: int) -> str:
    return message_id(person, "welcome", journey_of(person), [n])


def projections(person: str, email: str, first_name: str, city: str, coupon: str) -> list:
    """What the core projects for an identify, a signed_up and a journey that saw the person's city."""
    attributes = {"email": email, "first_name": first_name, "city": city}
    journey = dict(person=person, campaign_id="welcome", campaign_version="v1", journey_id=journey_of(person))
    return [
        Activity(person=person, at=T0, input_kind="identify", summary=f"identify first_name: {first_name}",
                 changes={"attributes": {k: [None, v] for k, v in attributes.items()}},
                 input={"kind": "identify", "person": person, "at": T0, "attributes": attributes}),
        PersonSnapshot(person=person, at=T0, email=email, attributes=attributes, segments={"vip": T0}),
        Activity(person=person, at=T0 + 1, input_kind="track", summary=f"track signed_up {{coupon: {coupon}}}",
                 event_name="signed_up", event_data={"coupon": coupon},
                 input={"kind": "track", "person": person, "at": T0 + 1, "name": "signed_up", "data": {"coupon": coupon}}),
        JourneyEvent(event="entered", at=T0 + 1, position="0", reason="signed_up",
                     detail={"cause": {"event": "signed_up", "data": {"coupon": coupon}}}, **journey),
        JourneyEvent(event="step", at=T0 + 1, step="0", step_kind="branch", position="0.0.0", reason="then",
                     detail={"arm": "then", "condition": {"attribute": "city", "eq": city, "saw": city}},
                     **journey),
        JourneyEvent(event="step", at=T0 + 1, step="0.0.0", step_kind="wait", position="0.0.0",
                     resume_at=T0 + 3600, reason="waiting", **journey),
    ]


def send(person: str, email: str, first_name: str, coupon: str, n: int) -> SendEmail:
    return SendEmail(
        message_id=message_of(person, n), person=person, to=email, template="welcome", campaign_id="welcome",
        campaign_version="v1", journey_id=journey_of(person), step=str(n), decided_at=T0 + 1,
        reason="welcome v1: step 0 after signed_up",
        context=RenderContext(customer={"email": email, "first_name": first_name},
                              event={"coupon": coupon}, event_name="signed_up"),
    )


async def remember(pool: asyncpg.Pool, project, person: str, email: str, first_name: str, city: str,
                   coupon: str) -> None:
    """Store a person everywhere the read side and delivery would: profile, activity, journey,
    a bounced message, a sent one, a queued one, a suppression, a subscription choice."""
    await project(pool, projections(person, email, first_name, city, coupon))
    bounced, sent, queued = (send(person, email, first_name, coupon, n) for n in range(3))
    await outbox.insert_sends(pool, [bounced, sent, queued], now=T0 + 1)
    await outbox.claim(pool, "erasure/0", 2, lease_seconds=60, now=T0 + 2)
    await outbox.record_outcomes(pool, "erasure/0", [
        outcomes.failed(bounced.message_id, f"550 5.1.1 <{email.lower()}>: no such user"),
        outcomes.sent(sent.message_id, f"250 2.0.0 Ok: queued for <{email.lower()}>",
                      template_version="v1", subject=f"Welcome, {first_name}"),
    ], now=T0 + 3)
    await outbox.record_event(pool, sent.message_id, "opened", detail=f"{first_name}'s phone", now=T0 + 4)
    await suppression.suppress(pool, email, "hard_bounce", detail=f"550 5.1.1 <{email.lower()}>", now=T0 + 3)
    await preferences.set_preferences(pool, person, {"newsletter": False}, now=T0 + 4)


async def traces(pool: asyncpg.Pool, needles: tuple[str, ...]) -> list[str]:
    """Every table and column of the deployment's schema that holds one of `needles` (any case)."""
    found = []
    async with pool.acquire() as conn:
        columns = await conn.fetch(
            "SELECT table_name, column_name FROM information_schema.columns"
            " WHERE table_schema = current_schema() ORDER BY table_name, column_name"
        )
        for table, column in ((c["table_name"], c["column_name"]) for c in columns):
            for needle in needles:
                hits = await conn.fetchval(
                    f'SELECT count(*) FROM "{table}" WHERE strpos(lower("{column}"::text), lower($1)) > 0',
                    needle,
                )
                if hits:
                    found.append(f"{table}.{column} holds {needle!r} ({hits} rows)")
    return found


async def test_after_an_erasure_no_table_or_column_holds_the_persons_id_address_or_attributes(pool, project):
    await remember(pool, project, ZEB, ZEB_EMAIL, "Zebulon", "Quixotown", "ZEBU-77")
    await save_progress(pool, "b1", 0, PartitionProgress(scanned=1, enqueued=1, last_key=ZEB))
    # The rows above really hold every trace, in several tables each.
    assert len({t.split(".")[0] for t in await traces(pool, ZEB_TRACES)}) >= 10

    assert await project(pool, [PersonSnapshot(person=ZEB, at=T0 + 100, deleted=True)]) == []
    assert await traces(pool, ZEB_TRACES) == []


async def test_other_people_and_what_only_counts_are_left_as_they_were(pool, project):
    await remember(pool, project, ZEB, ZEB_EMAIL, "Zebulon", "Quixotown", "ZEBU-77")
    await remember(pool, project, OLGA, OLGA_EMAIL, "Olga", "Oslo", "OLGA-1")
    before = await export_person(pool, OLGA)
    await project(pool, [PersonSnapshot(person=ZEB, at=T0 + 100, deleted=True)])
    assert await export_person(pool, OLGA) == before
    [welcome] = await queries.campaign_metrics(pool)
    assert welcome.entered == 2
    assert [(s.step, s.total, s.sent, s.failed, s.opened) for s in welcome.steps] == [
        ("0", 2, 0, 2, 0), ("1", 2, 2, 0, 2), ("2", 2, 0, 1, 0)]
    flow = await queries.campaign_flow(pool, "welcome")
    assert (flow.steps[0].step, flow.steps[0].reached, flow.steps[0].arms) == ("0", 2, {"then": 2})
    erased = await pool.fetchrow("SELECT status, last_error FROM outbox WHERE message_id = $1", message_of(ZEB, 0))
    assert (erased["status"], erased["last_error"]) == ("failed", "550 5.1.1 [erased]")
    assert await pool.fetchval("SELECT status FROM outbox WHERE message_id = $1", message_of(ZEB, 2)) == "failed"


async def test_a_suppressed_address_another_person_still_has_stays_suppressed(pool, project):
    await remember(pool, project, ZEB, ZEB_EMAIL, "Zebulon", "Quixotown", "ZEBU-77")
    await project(pool, [PersonSnapshot(person="zeb-work", at=T0, email=ZEB_EMAIL.lower())])
    await project(pool, [PersonSnapshot(person=ZEB, at=T0 + 100, deleted=True)])
    assert await suppression.suppression_of(pool, ZEB_EMAIL) is not None


async def test_gdpr_export_shows_every_table_holding_the_person_and_nothing_after_erasure(pool, project, fresh_database_url):
    await remember(pool, project, ZEB, ZEB_EMAIL, "Zebulon", "Quixotown", "ZEBU-77")
    env = {"NUDGE_DATABASE_URL": fresh_database_url, "NUDGE_APP_ID": DEFAULT_APP_ID}
    # The command runs its own event loop: off this test's loop.
    shown = await asyncio.to_thread(CliRunner().invoke, cli, ["gdpr", "export", ZEB], env=env)
    assert shown.exit_code == 0, shown.output
    tables = json.loads(shown.output)["tables"]
    assert set(tables) >= {
        "people", "segment_members", "activity", "outbox", "message_events", "journey_events",
        "journey_steps", "current_journeys", "subscription_preferences", "suppressions",
    }
    assert tables["people"][0]["attributes"]["city"] == "Quixotown"
    assert [row["input"]["kind"] for row in tables["activity"]] == ["identify", "track"]
    assert {row["status"] for row in tables["message_events"]} >= {"queued", "failed", "sent", "opened"}

    await project(pool, [PersonSnapshot(person=ZEB, at=T0 + 100, deleted=True)])
    after = await asyncio.to_thread(CliRunner().invoke, cli, ["gdpr", "export", ZEB], env=env)
    assert after.exit_code != 0 and "nothing is stored" in after.output
