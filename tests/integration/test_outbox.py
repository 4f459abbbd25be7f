"""The PostgreSQL outbox: idempotent inserts, exclusive claims, retries, reaping, metrics."""

from __future__ import annotations

import asyncio
import time

import asyncpg

from agents.sender import outbox
from schemas.commands import RenderContext, SendEmail


def send(message_id: str, **overrides: object) -> SendEmail:
    fields: dict = dict(
        message_id=message_id,
        person="ana",
        to="ana@example.com",
        template="welcome",
        campaign_id="welcome",
        campaign_version="v1",
        journey_id="j1",
        step="0",
        decided_at=1000.0,
        reason="welcome v1: step 0 after signed_up",
        context=RenderContext(customer={"first_name": "Ana"}),
    )
    fields.update(overrides)
    return SendEmail(**fields)


async def test_same_message_id_inserted_twice_makes_one_row(db_pool: asyncpg.Pool):
    assert await outbox.insert_sends(db_pool, [send("m1")]) == 1
    assert await outbox.insert_sends(db_pool, [send("m1"), send("m1")]) == 0
    assert await db_pool.fetchval("SELECT count(*) FROM outbox") == 1


async def test_insert_keeps_the_whole_command_and_queues_it(db_pool: asyncpg.Pool):
    await outbox.insert_sends(db_pool, [send("m1")])
    status = await outbox.message_status(db_pool, "m1")
    assert status is not None
    assert status.row.status == "queued"
    assert status.row.command == send("m1")
    assert status.row.to_address == "ana@example.com"
    assert [(e.status, e.detail) for e in status.events] == [
        ("queued", "welcome v1: step 0 after signed_up")
    ]


async def test_insert_in_batches_larger_than_one_statement(db_pool: asyncpg.Pool):
    commands = [send(f"m{i}") for i in range(1200)]
    assert await outbox.insert_sends(db_pool, commands) == 1200


async def test_claim_marks_rows_sending_and_counts_the_attempt(db_pool: asyncpg.Pool):
    now = time.time()
    await outbox.insert_sends(db_pool, [send("m1")], now=now)
    [row] = await outbox.claim_due(db_pool, 10, now=now)
    assert (row.message_id, row.status, row.attempts) == ("m1", "sending", 1)
    assert row.claimed_at is not None and abs(row.claimed_at - now) < 0.01
    assert await outbox.claim_due(db_pool, 10, now=now) == []


async def test_claim_skips_rows_not_yet_due(db_pool: asyncpg.Pool):
    now = time.time()
    await outbox.insert_sends(db_pool, [send("m1")], now=now + 60)
    assert await outbox.claim_due(db_pool, 10, now=now) == []
    assert len(await outbox.claim_due(db_pool, 10, now=now + 60)) == 1


async def test_concurrent_claimers_never_get_the_same_row(db_pool: asyncpg.Pool):
    await outbox.insert_sends(db_pool, [send(f"m{i}") for i in range(300)])

    async def claimer() -> list[str]:
        got: list[str] = []
        while rows := await outbox.claim_due(db_pool, 7):
            got.extend(row.message_id for row in rows)
            await asyncio.sleep(0)
        return got

    first, second = await asyncio.gather(claimer(), claimer())
    assert first and second, "both claimers should have worked"
    assert len(set(first) & set(second)) == 0
    assert sorted(first + second) == sorted(f"m{i}" for i in range(300))


async def test_retry_requeues_with_a_delay_and_the_error(db_pool: asyncpg.Pool):
    now = time.time()
    await outbox.insert_sends(db_pool, [send("m1")], now=now)
    await outbox.claim_due(db_pool, 1, now=now)
    assert await outbox.mark_retry(db_pool, "m1", "451 try later", 30, now=now)
    assert await outbox.claim_due(db_pool, 1, now=now + 29) == []
    [row] = await outbox.claim_due(db_pool, 1, now=now + 30)
    assert (row.attempts, row.last_error) == (2, "451 try later")


async def test_failed_and_sent_rows_are_never_claimed_again(db_pool: asyncpg.Pool):
    await outbox.insert_sends(db_pool, [send("m1"), send("m2")])
    await outbox.claim_due(db_pool, 2)
    assert await outbox.mark_failed(db_pool, "m1", "550 no such user")
    assert await outbox.mark_sent(db_pool, "m2", "250 ok")
    assert await outbox.reap_stuck(db_pool, 0, now=time.time() + 3600) == 0
    assert await outbox.claim_due(db_pool, 10, now=time.time() + 3600) == []
    sent = await outbox.message_status(db_pool, "m2")
    assert sent is not None and sent.row.status == "sent" and sent.row.smtp_response == "250 ok"


async def test_mark_sent_twice_reports_the_second_as_no_change(db_pool: asyncpg.Pool):
    await outbox.insert_sends(db_pool, [send("m1")])
    await outbox.claim_due(db_pool, 1)
    assert await outbox.mark_sent(db_pool, "m1", "250 ok")
    assert not await outbox.mark_sent(db_pool, "m1", "250 ok")


async def test_reaper_requeues_only_claims_older_than_the_limit(db_pool: asyncpg.Pool):
    now = time.time()
    await outbox.insert_sends(db_pool, [send("old")], now=now - 1000)
    await outbox.insert_sends(db_pool, [send("new")], now=now - 999)
    [old] = await outbox.claim_due(db_pool, 1, now=now - 700)
    [new] = await outbox.claim_due(db_pool, 1, now=now - 10)
    assert (old.message_id, new.message_id) == ("old", "new")
    assert await outbox.reap_stuck(db_pool, 600, now=now) == 1
    [row] = await outbox.claim_due(db_pool, 10, now=now)
    assert row.message_id == "old" and row.attempts == 2
    status = await outbox.message_status(db_pool, "old")
    assert status is not None
    assert [e.status for e in status.events] == ["queued", "sending", "requeued", "sending"]


async def test_message_status_of_an_unknown_id_is_none(db_pool: asyncpg.Pool):
    assert await outbox.message_status(db_pool, "nope") is None
