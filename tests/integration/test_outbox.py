"""The PostgreSQL outbox: idempotent inserts, leased claims, outcomes in batches, metrics."""

from __future__ import annotations

import asyncio
import time
import uuid

import asyncpg
import pytest

from agents.sender import outbox, outcomes
from schemas.commands import RenderContext, SendEmail

pytestmark = pytest.mark.integration


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


LEASE = 10.0


async def claim(pool: asyncpg.Pool, limit: int = 10, owner: str = "loop/0", now: float | None = None):
    return await outbox.claim(pool, owner, limit, lease_seconds=LEASE, now=now)


async def record(pool: asyncpg.Pool, *items: outcomes.Outcome, owner: str = "loop/0", now: float | None = None):
    return await outbox.record_outcomes(pool, owner, list(items), now=now)


async def test_claim_leases_rows_to_the_loop_and_counts_the_attempt(db_pool: asyncpg.Pool):
    now = time.time()
    await outbox.insert_sends(db_pool, [send("m1")], now=now)
    [row] = await claim(db_pool, now=now)
    assert (row.message_id, row.status, row.attempts, row.lease_owner) == ("m1", "sending", 1, "loop/0")
    assert row.lease_until == pytest.approx(now + LEASE, abs=0.01)
    assert await claim(db_pool, now=now) == []


async def test_claim_skips_rows_not_yet_due(db_pool: asyncpg.Pool):
    now = time.time()
    await outbox.insert_sends(db_pool, [send("m1")], now=now + 60)
    assert await claim(db_pool, now=now) == []
    assert len(await claim(db_pool, now=now + 60)) == 1


async def test_transactional_rows_are_claimed_before_campaign_rows_before_broadcasts(db_pool: asyncpg.Pool):
    now = time.time()
    await outbox.insert_sends(db_pool, [send("b1", journey_id="broadcast:x")], now=now - 30)
    await outbox.insert_sends(db_pool, [send("c1")], now=now - 20)
    await outbox.insert_sends(db_pool, [send("t1", transactional=True)], now=now - 10)
    assert [r.message_id for r in await claim(db_pool, 2, now=now)] == ["t1", "c1"]
    assert [r.message_id for r in await claim(db_pool, 2, now=now)] == ["b1"]


async def test_concurrent_claimers_never_get_the_same_row(db_pool: asyncpg.Pool):
    await outbox.insert_sends(db_pool, [send(f"m{i}") for i in range(300)])

    async def claimer(owner: str) -> list[str]:
        got: list[str] = []
        while rows := await claim(db_pool, 7, owner=owner):
            got.extend(row.message_id for row in rows)
            await asyncio.sleep(0)
        return got

    first, second = await asyncio.gather(claimer("a/0"), claimer("b/0"))
    assert first and second, "both claimers should have worked"
    assert len(set(first) & set(second)) == 0
    assert sorted(first + second) == sorted(f"m{i}" for i in range(300))


async def test_retry_requeues_with_a_delay_and_the_error(db_pool: asyncpg.Pool):
    now = time.time()
    await outbox.insert_sends(db_pool, [send("m1")], now=now)
    await claim(db_pool, 1, now=now)
    assert await record(db_pool, outcomes.retry("m1", "451 try later", now + 30, 30), now=now) == {"m1"}
    assert await claim(db_pool, 1, now=now + 29) == []
    [row] = await claim(db_pool, 1, now=now + 30.001)
    assert (row.attempts, row.last_error) == (2, "451 try later")


async def test_a_deferral_does_not_count_the_claim_as_an_attempt(db_pool: asyncpg.Pool):
    now = time.time()
    await outbox.insert_sends(db_pool, [send("m1")], now=now)
    await claim(db_pool, 1, now=now)
    await record(db_pool, outcomes.deferred("m1", now + 5, "over the limit"), now=now)
    [row] = await claim(db_pool, 1, now=now + 5.001)
    assert row.attempts == 1


async def test_failed_and_sent_rows_are_never_claimed_again(db_pool: asyncpg.Pool):
    await outbox.insert_sends(db_pool, [send("m1"), send("m2")])
    await claim(db_pool, 2)
    applied = await record(db_pool, outcomes.failed("m1", "550 no such user"), outcomes.sent("m2", "250 ok"))
    assert applied == {"m1", "m2"}
    assert await outbox.requeue_expired(db_pool, now=time.time() + 3600) == 0
    assert await claim(db_pool, now=time.time() + 3600) == []
    sent = await outbox.message_status(db_pool, "m2")
    assert sent is not None and sent.row.status == "sent" and sent.row.smtp_response == "250 ok"
    assert sent.row.lease_owner is None and sent.row.lease_until is None


async def test_a_second_sent_for_one_message_does_not_apply(db_pool: asyncpg.Pool):
    await outbox.insert_sends(db_pool, [send("m1")])
    await claim(db_pool, 1)
    assert await record(db_pool, outcomes.sent("m1", "250 ok")) == {"m1"}
    assert await record(db_pool, outcomes.sent("m1", "250 ok")) == set()


async def test_sent_records_the_template_version_and_subject(db_pool: asyncpg.Pool):
    await outbox.insert_sends(db_pool, [send("m1")])
    await claim(db_pool, 1)
    await record(db_pool, outcomes.sent("m1", "250 ok", template_version="abc123", subject="Hi Ana"))
    status = await outbox.message_status(db_pool, "m1")
    assert status is not None
    assert (status.row.template_version, status.row.subject) == ("abc123", "Hi Ana")


async def test_a_loop_that_lost_its_lease_records_only_sent(db_pool: asyncpg.Pool):
    now = time.time()
    await outbox.insert_sends(db_pool, [send("m1"), send("m2")], now=now)
    await claim(db_pool, 2, owner="old/0", now=now)
    assert await outbox.requeue_expired(db_pool, now=now + LEASE + 1) == 2
    await claim(db_pool, 2, owner="new/0", now=now + LEASE + 1)
    # The old loop's answers arrive late: the relay's 250 still counts, a retry does not.
    applied = await record(
        db_pool, outcomes.sent("m1", "250 ok"), outcomes.retry("m2", "451", now + 99, 30),
        owner="old/0", now=now + LEASE + 2,
    )
    assert applied == {"m1"}
    m2 = await outbox.message_status(db_pool, "m2")
    assert m2 is not None and (m2.row.status, m2.row.lease_owner) == ("sending", "new/0")


async def test_renewal_extends_only_the_owners_unexpired_leases(db_pool: asyncpg.Pool):
    now = time.time()
    await outbox.insert_sends(db_pool, [send("a1"), send("a2"), send("b1")], now=now)
    await claim(db_pool, 1, owner="a/0", now=now)
    await claim(db_pool, 1, owner="a/0", now=now - LEASE)  # already expired at `now`
    await claim(db_pool, 1, owner="b/0", now=now)
    held = ["a1", "a2", "b1"]
    assert await outbox.renew_leases(db_pool, "a/0", held, LEASE, now=now + 1) == {"a1"}
    a1 = await outbox.message_status(db_pool, "a1")
    assert a1 is not None and a1.row.lease_until == pytest.approx(now + 1 + LEASE, abs=0.01)


async def test_a_restarted_loop_requeues_its_own_rows_at_once(db_pool: asyncpg.Pool):
    now = time.time()
    await outbox.insert_sends(db_pool, [send("a1"), send("b1")], now=now)
    await claim(db_pool, 1, owner="a/0", now=now)
    await claim(db_pool, 1, owner="b/0", now=now)
    assert await outbox.requeue_owned(db_pool, "a/0", now=now + 0.5) == 1
    [row] = await claim(db_pool, owner="c/0", now=now + 0.5)
    assert (row.message_id, row.attempts) == ("a1", 2)
    status = await outbox.message_status(db_pool, "a1")
    assert status is not None
    assert [e.status for e in status.events] == ["queued", "sending", "requeued", "sending"]


async def test_expired_leases_are_requeued_and_live_ones_kept(db_pool: asyncpg.Pool):
    now = time.time()
    await outbox.insert_sends(db_pool, [send("old"), send("new")], now=now - 100)
    await claim(db_pool, 1, owner="x/0", now=now - LEASE - 1)
    await claim(db_pool, 1, owner="y/0", now=now - 1)
    assert await outbox.requeue_expired(db_pool, now=now) == 1
    [row] = await claim(db_pool, owner="z/0", now=now)
    assert row.message_id == "old"


async def test_insert_announces_new_rows_on_the_outbox_channel(db_pool: asyncpg.Pool):
    heard = asyncio.Event()

    def listener(*_: object) -> None:
        heard.set()

    async with db_pool.acquire() as conn:
        channel = await outbox.outbox_channel(conn)
        await conn.add_listener(channel, listener)
        try:
            await outbox.insert_sends(db_pool, [send("m1")])
            await asyncio.wait_for(heard.wait(), 5)
        finally:
            await conn.remove_listener(channel, listener)


async def test_broadcast_counts_follow_queued_sent_and_failed(db_pool: asyncpg.Pool):
    journey = f"broadcast:{uuid.uuid4().hex[:8]}"
    await outbox.insert_sends(db_pool, [send(f"b{i}", journey_id=journey) for i in range(5)])
    await outbox.insert_sends(db_pool, [send("b0", journey_id=journey)])
    await claim(db_pool, 5)
    await record(db_pool, outcomes.sent("b0", "250"), outcomes.sent("b1", "250"), outcomes.failed("b2", "550"),
                 outcomes.retry("b3", "451", time.time(), 0))
    counts = await db_pool.fetchrow(
        "SELECT queued, sent, failed FROM broadcast_counts WHERE broadcast = $1", journey[10:]
    )
    assert dict(counts) == {"queued": 5, "sent": 2, "failed": 1}


async def test_message_status_of_an_unknown_id_is_none(db_pool: asyncpg.Pool):
    assert await outbox.message_status(db_pool, "nope") is None
