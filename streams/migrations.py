"""Apply deploy/migrations/*.sql to one deployment's schema, once each, in name order.

Each app id has its own schema (`streams/database.py`), created here on first use, with its own
`schema_migrations` record of what has been applied. Safe to call from every process at start:
an advisory lock serialises racing callers.
"""

from __future__ import annotations

from pathlib import Path

import asyncpg

import deploy
from streams.database import DEFAULT_APP_ID, connect, quote_identifier, schema_name

# Any constant works; it only has to be the same in every Nudge process.
_LOCK_KEY = 0x6E75_6467_655F_6D67  # "nudge_mg"


class MigrationError(RuntimeError):
    """A migration file failed to apply; the message names the file and the database error."""


def migrations_dir() -> Path:
    """The folder holding the packaged `*.sql` migrations."""
    return Path(deploy.__file__).parent / "migrations"


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
            await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_identifier(schema_name(app_id))}")
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
