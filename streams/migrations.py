"""Apply deploy/migrations/*.sql to a PostgreSQL database, once each, in name order.

Safe to call from every process at start: an advisory lock serialises racing callers, and
`schema_migrations` records what has been applied.
"""

from __future__ import annotations

from pathlib import Path

import asyncpg

import deploy

# Any constant works; it only has to be the same in every Nudge process.
_LOCK_KEY = 0x6E75_6467_655F_6D67  # "nudge_mg"


class MigrationError(RuntimeError):
    """A migration file failed to apply; the message names the file and the database error."""


def migrations_dir() -> Path:
    """The folder holding the packaged `*.sql` migrations."""
    return Path(deploy.__file__).parent / "migrations"


async def apply_migrations(dsn: str, *, directory: Path | None = None) -> list[str]:
    """Apply every not-yet-applied migration in name order; return the names newly applied."""
    folder = directory or migrations_dir()
    files = sorted(folder.glob("*.sql"), key=lambda path: path.name)
    conn = await asyncpg.connect(dsn)
    try:
        # Session-level lock: a second process waits here, then finds everything applied.
        await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
        try:
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
