"""The projector's writer: a row PostgreSQL refuses is set aside with its reason while the rest
of the batch is written; replays change nothing; an unreachable database is waited out."""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator

import asyncpg
import pytest

from agents.projector.batches import project_messages
from schemas.commands import Activity, JourneyEvent, PersonSnapshot
from schemas.wire import encode_commands
from streams.database import DEFAULT_APP_ID, DatabaseUnavailable, create_pool

pytestmark = pytest.mark.integration

T0 = 1_772_442_000.0


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(database_url, DEFAULT_APP_ID, max_size=2)
    await pool.execute(
        "TRUNCATE people, segment_members, activity, event_catalog, journey_events, journey_steps,"
        " current_journeys"
    )
    yield pool
    await pool.close()


def signup(person: str, at: float = T0, **attributes: object) -> list:
    """What the core projects for one identify: an activity line and the person's snapshot."""
    attributes = {"email": f"{person}@x.io", **attributes}
    return [
        Activity(person=person, at=at, input_kind="identify", summary="identify",
                 changes={"attributes": {k: [None, v] for k, v in attributes.items()}},
                 input={"kind": "identify", "person": person, "at": at, "attributes": attributes}),
        PersonSnapshot(person=person, at=at, email=f"{person}@x.io", attributes=attributes),
    ]


def messages(*groups: list) -> list[tuple[str, bytes]]:
    """One projections message per group of commands, at consecutive offsets."""
    return [(f"0:{offset}", encode_commands(group)) for offset, group in enumerate(groups)]


async def write(pool: asyncpg.Pool, batch: list[tuple[str, bytes | None]]):
    async def same_pool() -> asyncpg.Pool:
        return pool

    return (await project_messages(same_pool, batch)).refusals


async def count(pool: asyncpg.Pool, table: str) -> int:
    return await pool.fetchval(f"SELECT count(*) FROM {table}")


async def test_a_nul_character_between_valid_people_is_refused_and_everyone_else_is_written(pool):
    people = [signup(f"p{i:03d}") for i in range(120)]
    people.insert(60, signup("poison", first_name="a\u0000b"))
    refused = await write(pool, messages(*people))
    assert await count(pool, "people") == 120
    assert await count(pool, "activity") == 120
    assert await pool.fetchval("SELECT count(*) FROM people WHERE person = 'poison'") == 0
    assert {(r.person, r.source) for r in refused} == {("poison", "0:60")}
    assert all("PostgreSQL refused it" in r.reason for r in refused)


async def test_every_kind_of_refusal_names_its_reason_and_spares_the_other_commands(pool):
    batch = messages(
        signup("ana"),
        # NUL in plain text (the summary), not only in jsonb.
        [Activity(person="bo", at=T0, input_kind="track", summary="x\u0000y")],
        # An address too long for the email index: PostgreSQL's program limit, not a bad character.
        [PersonSnapshot(person="cy", at=T0, email=random.Random(1).randbytes(5000).hex() + "@x.io")],
        # A time PostgreSQL cannot represent.
        [PersonSnapshot(person="dee", at=1e20)],
        signup("eve"),
    ) + [("0:5", b"not json"), ("0:6", b'{"commands": [{"kind": "nonsense"}]}')]
    refused = await write(pool, batch)
    assert sorted(r.source for r in refused) == ["0:1", "0:2", "0:3", "0:5", "0:6"]
    reasons = {r.source: r.reason for r in refused}
    assert "CharacterNotInRepertoire" in reasons["0:1"]
    assert "ProgramLimitExceeded" in reasons["0:2"]
    assert "DatetimeFieldOverflow" in reasons["0:3"]
    assert "not a JSON command message" in reasons["0:5"]
    assert "not a read-model command" in reasons["0:6"]
    assert [r["person"] for r in await pool.fetch("SELECT person FROM people ORDER BY person")] == ["ana", "eve"]


async def test_one_bad_command_in_a_message_does_not_take_its_siblings_with_it(pool):
    [(source, raw)] = messages(signup("ana") + [Activity(person="ana", at=T0 + 1, input_kind="track", summary="\u0000")])
    refused = await write(pool, [(source, raw)])
    assert [(r.source, r.index) for r in refused] == [("0:0", 2)]
    assert await count(pool, "people") == 1
    assert await count(pool, "activity") == 1


async def test_a_dead_letter_carries_the_reason_the_source_and_the_refused_command(pool):
    [letter] = await write(pool, messages([Activity(person="bo", at=T0, input_kind="track", summary="\u0000")]))
    record = json.loads(letter.letter("app-projections", T0))
    assert (record["source_topic"], record["source"], record["index"]) == ("app-projections", "0:0", 0)
    assert json.loads(record["value"])["summary"] == "\u0000"
    assert record["reason"].startswith("PostgreSQL refused it")


async def test_a_replayed_batch_adds_no_activity_catalog_count_or_journey_row(pool):
    journey = JourneyEvent(event="entered", person="ana", campaign_id="w", campaign_version="v1",
                           journey_id="j1", at=T0, position="0")
    track = Activity(person="ana", at=T0, input_kind="track", summary="track signed_up",
                     event_name="signed_up", event_data={"plan": "pro"})
    batch = messages(signup("ana"), [track, journey])
    for _ in range(3):
        assert await write(pool, batch) == []
    assert await count(pool, "activity") == 2
    assert await count(pool, "journey_events") == 1
    assert await count(pool, "current_journeys") == 1
    assert await pool.fetchval("SELECT count FROM event_catalog WHERE event = 'signed_up' AND property = ''") == 1


async def test_two_identical_inputs_in_one_message_are_two_activity_lines(pool):
    view = Activity(person="ana", at=T0, input_kind="track", summary="page /pricing")
    assert await write(pool, messages([view, view])) == []
    assert await count(pool, "activity") == 2


async def test_an_unreachable_database_is_waited_out_and_then_everything_is_written(pool, database_url):
    calls, pauses = [], []

    async def flaky_pool() -> asyncpg.Pool:
        # The first two attempts meet a real refused connection, as during a PostgreSQL restart.
        calls.append(1)
        if len(calls) <= 2:
            try:
                await create_pool("postgresql://nudge:nudge@127.0.0.1:1/nudge", DEFAULT_APP_ID)
            except OSError as exc:
                raise DatabaseUnavailable(str(exc)) from exc
        return pool

    async def record_pause(seconds: float) -> None:
        pauses.append(seconds)

    outcome = await project_messages(flaky_pool, messages(signup("ana"), signup("bo")), sleep=record_pause)
    assert outcome.refusals == []
    assert outcome.written == {"activity": 2, "person_snapshot": 2}
    assert pauses == [0.5, 1.0]
    assert await count(pool, "people") == 2
