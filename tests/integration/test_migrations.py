"""Migrations apply once, in order, even when several processes start together."""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path
from typing import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from streams.migrations import MigrationError, apply_migrations, migrations_dir

ADMIN_URL = os.environ.get(
    "NUDGE_TEST_DATABASE_ADMIN_URL", "postgresql://nudge:nudge@127.0.0.1:15432/postgres"
)


@pytest.fixture
async def empty_database() -> AsyncIterator[str]:
    name = f"nudge_test_mig_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(ADMIN_URL)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(urlsplit(ADMIN_URL)._replace(path=f"/{name}"))
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def test_racing_processes_apply_each_migration_once(empty_database: str):
    results = await asyncio.gather(*(apply_migrations(empty_database) for _ in range(3)))
    expected = sorted(path.name for path in migrations_dir().glob("*.sql"))
    assert sorted(results, key=len, reverse=True) == [expected, [], []]
    assert await apply_migrations(empty_database) == []
    conn = await asyncpg.connect(empty_database)
    try:
        names = [r["name"] for r in await conn.fetch("SELECT name FROM schema_migrations")]
        assert sorted(names) == expected
    finally:
        await conn.close()


async def test_a_failing_migration_is_rolled_back_and_named(empty_database: str, tmp_path: Path):
    (tmp_path / "001_ok.sql").write_text("CREATE TABLE a (x int);")
    (tmp_path / "002_bad.sql").write_text("CREATE TABLE b (x int); SELECT nonsense FROM nowhere;")
    with pytest.raises(MigrationError, match="002_bad.sql"):
        await apply_migrations(empty_database, directory=tmp_path)
    conn = await asyncpg.connect(empty_database)
    try:
        assert await conn.fetchval("SELECT to_regclass('b')") is None
        assert await conn.fetchval("SELECT to_regclass('a')") == "a"
        assert [r["name"] for r in await conn.fetch("SELECT name FROM schema_migrations")] == [
            "001_ok.sql"
        ]
    finally:
        await conn.close()
