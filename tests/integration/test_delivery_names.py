"""Delivery loop names in PostgreSQL: held per process, taken back by the same host's next run."""

from __future__ import annotations

import asyncpg
import pytest

from agents.sender import loop_names
from agents.sender.loop_names import Me

pytestmark = pytest.mark.integration

NOW = 1_000_000.0


async def test_two_live_processes_get_different_names_and_a_restart_gets_its_own_back(db_pool: asyncpg.Pool):
    await db_pool.execute("TRUNCATE delivery_loops")
    first = Me(host="h", pid=1, instance="a")
    second = Me(host="h", pid=2, instance="b")
    alive = {1, 2}

    def is_alive(pid: int) -> bool:
        return pid in alive

    assert await loop_names.take_names(db_pool, "h", 2, first, NOW, 10, is_alive) == ["h/0", "h/1"]
    assert await loop_names.take_names(db_pool, "h", 1, second, NOW, 10, is_alive) == ["h/2"]
    alive.discard(1)  # the first process is SIGKILLed; its successor starts a second later
    successor = Me(host="h", pid=3, instance="c")
    assert await loop_names.take_names(db_pool, "h", 2, successor, NOW + 1, 10, is_alive) == ["h/0", "h/1"]
    assert not await loop_names.heartbeat(db_pool, "h/0", first, NOW + 2)
    assert await loop_names.heartbeat(db_pool, "h/0", successor, NOW + 2)


async def test_giving_names_up_frees_them(db_pool: asyncpg.Pool):
    await db_pool.execute("TRUNCATE delivery_loops")
    me = Me(host="h", pid=1, instance="a")
    names = await loop_names.take_names(db_pool, "x", 1, me, NOW, 10)
    await loop_names.give_up(db_pool, names, me)
    other = Me(host="other", pid=9, instance="z")
    assert await loop_names.take_names(db_pool, "x", 1, other, NOW, 10) == ["x/0"]
