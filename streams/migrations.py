"""Apply streams/sql/*.sql to one deployment's schema, once each, in name order.

Each app id has its own schema (`streams/database.py`), created here on first use, with its own
`schema_migrations` record of what has been applied. Safe to call from every process at start:
an advisory lock serialises racing callers.
"""

from __future__ import annotations

import logging
from pathlib import Path

import asyncpg

from schemas.errors import StateError
from streams.database import DEFAULT_APP_ID, connect, quote_identifier, schema_name

log = logging.getLogger(__name__)

# Any constant works; it only has to be the same in every Nudge process.
_LOCK_KEY = 0x6E75_6467_655F_6D67  # "nudge_mg"


class MigrationError(StateError, RuntimeError):
    """A migration file failed to apply; the message names the file and the database error."""


def migrations_dir() -> Path:
    """The folder holding the packaged `*.sql` migrations, beside this module."""
    return Path(__file__).parent / "sql"


async def apply_migrations(
    dsn: str, app_id: str = DEFAULT_APP_ID, *, directory: Path | None = None
) -> list[str]:
    """Apply every migration not yet applied to `app_id`'s schema; return the names applied."""
    folder = directory or migrations_dir()
    files = sorted(folder.glob("*.sql"), key=lambda path: path.name)
    conn = await connect(dsn, app_id)
    try:
        # Session-level lock: a second process waits here, then finds everything applied.
        await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
        try:
            schema = schema_name(app_id)
            if not await conn.fetchval(_SCHEMA_EXISTS, schema) and await conn.fetchval(_LEGACY):
                log.warning(
                    "PostgreSQL holds the tables of an older Nudge in schema public; deployment %r "
                    "keeps its tables in schema %r from now on. To keep that data (queued mail, "
                    "profiles, activity), stop the workers and run `nudge migrate --adopt-public` "
                    "once, before anything is written to the new schema.", app_id, schema,
                )
            await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_identifier(schema)}")
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " name text PRIMARY KEY,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {row["name"] for row in await conn.fetch("SELECT name FROM schema_migrations")}
            applied: list[str] = []
            for path in files:
                if path.name in done:
                    continue
                sql = path.read_text(encoding="utf-8")
                try:
                    async with conn.transaction():
                        await conn.execute(sql)
                        await conn.execute(
                            "INSERT INTO schema_migrations (name) VALUES ($1)", path.name
                        )
                except asyncpg.PostgresError as exc:
                    raise MigrationError(
                        f"migration {path.name} failed and was rolled back: {exc}"
                    ) from exc
                applied.append(path.name)
            return applied
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)
    finally:
        await conn.close()


_SCHEMA_EXISTS = "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)"
# Nudge before schemas per app id kept everything in `public`, with its migrations listed there.
_LEGACY = "SELECT to_regclass('public.schema_migrations') IS NOT NULL"
_RELATIONS = """
SELECT c.relname, c.relkind FROM pg_class c
WHERE c.relnamespace = $1::regnamespace AND c.relkind IN ('r', 'p', 'v')
ORDER BY c.relkind = 'v', c.relname
"""


async def adopt_public(dsn: str, app_id: str = DEFAULT_APP_ID) -> list[str]:
    """Move an older, unscoped Nudge's tables and views from `public` into `app_id`'s schema
    (their indexes and sequences move with them); return the names moved."""
    schema = schema_name(app_id)
    conn = await connect(dsn, app_id)
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
        try:
            if not await conn.fetchval(_LEGACY):
                raise MigrationError("nothing to adopt: schema public holds no Nudge tables")
            if await conn.fetchval(_SCHEMA_EXISTS, schema) and await conn.fetch(_RELATIONS, schema):
                raise MigrationError(
                    f"schema {schema!r} already holds tables (a worker or `nudge migrate` ran on it): "
                    f"adopting would mix two deployments. If nothing there is needed, drop it "
                    f"(DROP SCHEMA {quote_identifier(schema)} CASCADE) and run this again"
                )
            moved = []
            async with conn.transaction():
                await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_identifier(schema)}")
                for row in await conn.fetch(_RELATIONS, "public"):
                    kind = "VIEW" if row["relkind"] == "v" else "TABLE"
                    await conn.execute(
                        f"ALTER {kind} public.{quote_identifier(row['relname'])}"
                        f" SET SCHEMA {quote_identifier(schema)}"
                    )
                    moved.append(row["relname"])
            return moved
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)
    finally:
        await conn.close()
