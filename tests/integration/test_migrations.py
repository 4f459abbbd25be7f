"""Migrations apply once, in order, into each deployment's own schema, even when several
processes start together; two deployments on one database never see each other's rows."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from streams.database import connect, connect_server, create_pool, schema_name
from streams.migrations import MigrationError, adopt_public, apply_migrations, migrations_dir

pytestmark = pytest.mark.integration


@pytest.fixture
async def empty_database(local_stack: None) -> AsyncIterator[str]:
    """A DSN to a database with nothing in it (not even the default app's schema)."""
    from deploy.local import postgres

    name = f"nudge_test_mig_{uuid.uuid4().hex[:10]}"
    yield postgres.create_database(name, migrate_schema=False)
    postgres.drop_database(name)


async def test_racing_processes_apply_each_migration_once(empty_database: str):
    results = await asyncio.gather(*(apply_migrations(empty_database, "app") for _ in range(3)))
    expected = sorted(path.name for path in migrations_dir().glob("*.sql"))
    assert sorted(results, key=len, reverse=True) == [expected, [], []]
    assert await apply_migrations(empty_database, "app") == []
    conn = await connect(empty_database, "app")
    try:
        names = [r["name"] for r in await conn.fetch("SELECT name FROM schema_migrations")]
        assert sorted(names) == expected
    finally:
        await conn.close()


async def test_a_failing_migration_is_rolled_back_and_named(empty_database: str, tmp_path: Path):
    (tmp_path / "001_ok.sql").write_text("CREATE TABLE a (x int);")
    (tmp_path / "002_bad.sql").write_text("CREATE TABLE b (x int); SELECT nonsense FROM nowhere;")
    with pytest.raises(MigrationError, match=r"002_bad\.sql"):
        await apply_migrations(empty_database, "app", directory=tmp_path)
    conn = await connect(empty_database, "app")
    try:
        assert await conn.fetchval("SELECT to_regclass('b')") is None
        assert await conn.fetchval("SELECT to_regclass('a')") == "a"
        assert [r["name"] for r in await conn.fetch("SELECT name FROM schema_migrations")] == [
            "001_ok.sql"
        ]
    finally:
        await conn.close()


async def test_each_app_id_gets_its_own_schema_with_every_table(empty_database: str):
    await apply_migrations(empty_database, "shop-eu")
    await apply_migrations(empty_database, "shop-us")
    conn = await connect_server(empty_database)
    try:
        tables = {
            (r["table_schema"], r["table_name"])
            for r in await conn.fetch(
                "SELECT table_schema, table_name FROM information_schema.tables"
                " WHERE table_schema NOT IN ('pg_catalog', 'information_schema')"
            )
        }
    finally:
        await conn.close()
    eu = {name for schema, name in tables if schema == "shop-eu"}
    assert {"outbox", "people", "activity", "journey_events", "schema_migrations"} <= eu
    assert {name for schema, name in tables if schema == "shop-us"} == eu
    assert not {name for schema, name in tables if schema == "public"}


async def test_two_deployments_on_one_database_never_see_each_others_rows(empty_database: str):
    for app in ("shop-eu", "shop-us"):
        await apply_migrations(empty_database, app)
    eu = await create_pool(empty_database, "shop-eu", max_size=1)
    us = await create_pool(empty_database, "shop-us", max_size=1)
    try:
        await eu.execute(
            "INSERT INTO people (person, email, updated_at) VALUES ('ana', 'ana@x.io', now())"
        )
        await eu.execute("INSERT INTO activity (person, at, kind) VALUES ('ana', now(), 'identify')")
        assert await us.fetchval("SELECT count(*) FROM people") == 0
        assert await us.fetchval("SELECT count(*) FROM activity") == 0
        assert await eu.fetchval("SELECT email FROM people WHERE person = 'ana'") == "ana@x.io"
    finally:
        await eu.close()
        await us.close()


async def test_a_scoped_connection_does_not_fall_back_to_the_public_schema(empty_database: str):
    server = await connect_server(empty_database)
    try:
        # What an older, unscoped Nudge left behind.
        await server.execute("CREATE TABLE public.people (person text)")
        await server.execute("INSERT INTO public.people VALUES ('legacy')")
    finally:
        await server.close()
    conn = await connect(empty_database, "fresh")
    try:
        with pytest.raises(asyncpg.UndefinedTableError):
            await conn.fetchval("SELECT count(*) FROM people")
    finally:
        await conn.close()


def test_a_long_app_id_gets_a_distinct_schema_name_postgresql_can_hold():
    long_a, long_b = "a" * 70 + "-one", "a" * 70 + "-two"
    assert len(schema_name(long_a).encode()) <= 63
    assert schema_name(long_a) != schema_name(long_b)
    assert schema_name("nudge") == "nudge"


async def _older_nudge_in_public(dsn: str) -> None:
    """What Nudge before schemas per app id left: its first migrations, applied in `public`."""
    server = await connect_server(dsn)
    try:
        await server.execute("CREATE TABLE schema_migrations (name text PRIMARY KEY, applied_at timestamptz)")
        for path in sorted(migrations_dir().glob("0[0-2]*.sql")):
            await server.execute(path.read_text())
            await server.execute("INSERT INTO schema_migrations (name) VALUES ($1)", path.name)
        await server.execute("INSERT INTO people (person, email, updated_at) VALUES ('ana', 'ana@x.io', now())")
        await server.execute(
            "INSERT INTO outbox (message_id, person, template, command) VALUES ('m1', 'ana', 'welcome', '{}')"
        )
    finally:
        await server.close()


async def test_an_older_deployments_tables_are_adopted_from_public_with_their_rows(empty_database: str):
    await _older_nudge_in_public(empty_database)
    moved = await adopt_public(empty_database, "shop")
    assert {"people", "outbox", "activity", "schema_migrations", "campaign_metrics"} <= set(moved)
    applied = await apply_migrations(empty_database, "shop")
    assert applied and all(not name.startswith(("00", "01", "02")) for name in applied)
    conn = await connect(empty_database, "shop")
    try:
        assert await conn.fetchval("SELECT email FROM people WHERE person = 'ana'") == "ana@x.io"
        assert await conn.fetchval("SELECT status FROM outbox WHERE message_id = 'm1'") == "queued"
        # The view moved too, and still reads the moved table.
        assert await conn.fetchval("SELECT count(*) FROM campaign_metrics") == 0
    finally:
        await conn.close()
    server = await connect_server(empty_database)
    try:
        assert await server.fetchval("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == 0
    finally:
        await server.close()


async def test_adopting_into_a_schema_that_already_has_tables_is_refused(empty_database: str):
    await _older_nudge_in_public(empty_database)
    await apply_migrations(empty_database, "shop")
    with pytest.raises(MigrationError, match="already holds tables"):
        await adopt_public(empty_database, "shop")
