"""The worker's PostgreSQL connection pool, created once per process."""

from __future__ import annotations

import asyncpg

from streams.settings import Settings


class DatabaseUnavailable(RuntimeError):
    """PostgreSQL at NUDGE_DATABASE_URL cannot be reached."""


_pool: asyncpg.Pool | None = None


async def get_pool(settings: Settings) -> asyncpg.Pool:
    """The shared pool, connecting on first use."""
    global _pool
    if _pool is None:
        try:
            _pool = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=8)
        except (OSError, asyncpg.PostgresError) as exc:
            raise DatabaseUnavailable(
                f"cannot connect to PostgreSQL (NUDGE_DATABASE_URL): {exc}; "
                "is `nudge stack up` running, or is the URL right?"
            ) from exc
    return _pool


async def close_pool() -> None:
    """Close the shared pool, if one was opened."""
    global _pool
    if _pool is not None:
        await _pool.close()
        _pool = None


async def cli_pool(settings: Settings) -> asyncpg.Pool:
    """The shared pool for a CLI command: an unreachable database is a clean command error."""
    import click

    try:
        return await get_pool(settings)
    except DatabaseUnavailable as exc:
        raise click.ClickException(str(exc)) from exc
