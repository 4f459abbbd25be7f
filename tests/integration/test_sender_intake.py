"""The sender agent's intake: every command lands in the outbox or is handed back with a reason."""

from __future__ import annotations

import os

import asyncpg
import pytest

from agents.sender import outbox
from agents.sender.intake import store_sends
from schemas.commands import RenderContext, SendEmail
from streams.database import DatabaseUnavailable

pytestmark = pytest.mark.integration


def send(message_id: str, **customer: object) -> SendEmail:
    return SendEmail(message_id=message_id, person="ana", to="ana@example.com", template="welcome",
                     decided_at=1000.0, context=RenderContext(customer=dict(customer)))


async def test_a_nul_byte_in_an_attribute_is_stored_replaced_and_the_batch_goes_in(db_pool: asyncpg.Pool):
    refused = await store_sends(_pool_of(db_pool), [send("a"), send("bad", first_name="a\x00b"), send("c")])
    assert refused == []
    status = await outbox.message_status(db_pool, "bad")
    assert status is not None and status.row.command.context.customer["first_name"] == "a\ufffdb"
    assert await db_pool.fetchval("SELECT count(*) FROM outbox") == 3


async def test_a_command_postgresql_refuses_is_handed_back_while_the_rest_goes_in(db_pool: asyncpg.Pool):
    # A message id longer than a btree index entry may be: no replacement can make it storable.
    huge = send("m" + os.urandom(6000).hex())
    refused = await store_sends(_pool_of(db_pool), [send("a"), huge, send("c")])
    assert [(c.message_id, "outbox refused" in reason) for c, reason in refused] == [(huge.message_id, True)]
    assert await db_pool.fetchval("SELECT count(*) FROM outbox") == 2


async def test_an_unreachable_database_is_waited_out_not_skipped(db_pool: asyncpg.Pool):
    attempts = 0

    async def flaky() -> asyncpg.Pool:
        nonlocal attempts
        attempts += 1
        if attempts <= 2:
            raise DatabaseUnavailable("PostgreSQL is restarting")
        return db_pool

    assert await store_sends(flaky, [send("a")]) == []
    assert attempts == 3
    assert await db_pool.fetchval("SELECT count(*) FROM outbox") == 1


def _pool_of(pool: asyncpg.Pool):
    async def get() -> asyncpg.Pool:
        return pool
    return get
