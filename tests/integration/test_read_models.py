"""The projector's PostgreSQL read models: profiles, segment members, activity, event catalog, erasure."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from agents.person.campaign_set import CampaignSet
from agents.person.engine import decide
from agents.sender.outbox import insert_sends
from schemas.campaigns import Campaign, SegmentDefinition
from schemas.commands import Activity, PersonSnapshot, SendEmail
from schemas.inputs import Delete, Identify, Track
from streams.database import DEFAULT_APP_ID, create_pool

pytestmark = pytest.mark.integration

T0 = 1_772_442_000.0
CAMPAIGNS = CampaignSet.build(
    [Campaign.model_validate({"id": "w", "trigger": {"event": "signed_up"}, "steps": [{"send": "hi"}]})],
    segments=[SegmentDefinition.model_validate({"id": "pro", "when": {"attribute": "plan", "eq": "pro"}})],
)


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(database_url, DEFAULT_APP_ID, max_size=2)
    await pool.execute(
        "TRUNCATE people, segment_members, activity, event_catalog, outbox, message_events,"
        " journey_events, journey_steps, current_journeys"
    )
    yield pool
    await pool.close()


def run(*inputs):
    """The commands `decide` issues for these inputs, in order."""
    states, commands = {}, []
    for item in inputs:
        states[item.person], new = decide(states.get(item.person), item, CAMPAIGNS, item.at)
        commands += new
    return commands


def read_models(commands):
    return [c for c in commands if isinstance(c, (Activity, PersonSnapshot))]


async def test_a_snapshot_becomes_the_persons_row_and_segment_membership(pool, project) -> None:
    await project(pool, read_models(run(
        Identify(person="ana", at=T0, attributes={"email": "ana@x.io", "plan": "pro"}),
    )))
    row = await pool.fetchrow("SELECT email, attributes::text, suppressed FROM people WHERE person = 'ana'")
    assert (row["email"], row["suppressed"]) == ("ana@x.io", False)
    assert await pool.fetchval("SELECT count(*) FROM segment_members WHERE segment = 'pro'") == 1


async def test_leaving_a_segment_removes_the_member_row(pool, project) -> None:
    await project(pool, read_models(run(
        Identify(person="ana", at=T0, attributes={"plan": "pro"}),
        Identify(person="ana", at=T0 + 1, attributes={"plan": "free"}),
    )))
    assert await pool.fetchval("SELECT count(*) FROM segment_members") == 0


async def test_every_applied_input_is_one_activity_row(pool, project) -> None:
    await project(pool, read_models(run(
        Identify(person="ana", at=T0, attributes={"plan": "trial"}),
        Track(person="ana", at=T0 + 1, name="signed_up", data={"source": "ads"}),
    )))
    rows = await pool.fetch("SELECT kind, summary FROM activity WHERE person = 'ana' ORDER BY at")
    assert [r["kind"] for r in rows] == ["identify", "track"]
    assert "entered w" in rows[1]["summary"] and "queued hi" in rows[1]["summary"]


async def test_the_event_catalog_counts_events_and_property_types_across_batches(pool, project) -> None:
    for at in (T0, T0 + 1):
        await project(pool, read_models(run(
            Track(person="ana", at=at, name="purchase", data={"amount": 5, "sku": "A"}),
        )))
    rows = await pool.fetch("SELECT property, json_type, count FROM event_catalog WHERE event = 'purchase' ORDER BY property")
    assert [(r["property"], r["json_type"], r["count"]) for r in rows] == [
        ("", "event", 2), ("amount", "number", 2), ("sku", "string", 2)
    ]


async def test_deleting_a_person_erases_their_rows_and_the_personal_data_of_their_mail(pool, project) -> None:
    commands = run(
        Identify(person="ana", at=T0, attributes={"email": "ana@x.io", "plan": "pro"}),
        Track(person="ana", at=T0 + 1, name="signed_up"),
    )
    await project(pool, read_models(commands))
    await insert_sends(pool, [c for c in commands if isinstance(c, SendEmail)])
    await project(pool, read_models(run(Delete(person="ana", at=T0 + 2))))
    for table in ("people", "segment_members", "activity"):
        assert await pool.fetchval(f"SELECT count(*) FROM {table} WHERE person = 'ana'") == 0
    mail = await pool.fetchrow("SELECT person, to_address, status, command::text FROM outbox")
    assert (mail["person"], mail["to_address"], mail["status"]) == ("", None, "failed")
    assert "ana" not in mail["command"]


async def test_a_delete_then_new_data_in_one_batch_keeps_only_the_new_data(pool, project) -> None:
    await project(pool, read_models(run(
        Identify(person="ana", at=T0, attributes={"plan": "pro"}),
        Delete(person="ana", at=T0 + 1),
        Identify(person="ana", at=T0 + 2, attributes={"plan": "free"}),
    )))
    assert await pool.fetchval("SELECT attributes->>'plan' FROM people WHERE person = 'ana'") == "free"
    assert await pool.fetchval("SELECT count(*) FROM activity WHERE person = 'ana'") == 1
    assert await pool.fetchval("SELECT count(*) FROM segment_members") == 0
