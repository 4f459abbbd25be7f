"""Every PostgreSQL connection Nudge opens, each scoped to one deployment's schema.

A deployment (one `NUDGE_APP_ID`) keeps all its tables in a schema named after its app id, and
every connection made here has `search_path` set to that schema alone. Two deployments sharing
one database therefore never read or write each other's outbox, profiles or activity, and the
SQL elsewhere names tables without a schema. Nothing outside this module calls
`asyncpg.connect` or `asyncpg.create_pool`.
"""

from __future__ import annotations

import hashlib

import asyncpg

from schemas.errors import StateError
from streams.settings import Settings

# PostgreSQL truncates identifiers longer than this many bytes (NAMEDATALEN - 1).
_MAX_IDENTIFIER = 63

# The deployment `nudge stack up` and a bare `nudge migrate` prepare.
DEFAULT_APP_ID: str = Settings.model_fields["app_id"].default


class DatabaseUnavailable(StateError, RuntimeError):
    """PostgreSQL at NUDGE_DATABASE_URL cannot be reached: start it (`nudge stack up` locally) or fix the URL."""


def schema_name(app_id: str) -> str:
    """The schema holding `app_id`'s tables: the app id itself, hashed down if too long."""
    if not app_id:
        raise ValueError("an app id is needed to choose the PostgreSQL schema (NUDGE_APP_ID)")
    if len(app_id.encode()) <= _MAX_IDENTIFIER:
        return app_id
    # Truncation alone could make two long app ids share a schema.
    tail = hashlib.sha256(app_id.encode()).hexdigest()[:12]
    return app_id.encode()[: _MAX_IDENTIFIER - 13].decode(errors="ignore") + "_" + tail


def quote_identifier(name: str) -> str:
    """`name` as a quoted SQL identifier (app ids may hold dashes, dots, capitals)."""
    return '"' + name.replace('"', '""') + '"'


def _scoped(app_id: str) -> dict[str, str]:
    # The app's schema only: with `public` on the path, a deployment would silently read
    # whatever an older, unscoped Nudge left there.
    return {"search_path": quote_identifier(schema_name(app_id))}


async def connect(dsn: str, app_id: str) -> asyncpg.Connection:
    """One connection to `dsn` that sees only `app_id`'s tables."""
    return await asyncpg.connect(dsn, server_settings=_scoped(app_id))


async def create_pool(
    dsn: str, app_id: str, *, min_size: int = 1, max_size: int = 8
) -> asyncpg.Pool:
    """A pool to `dsn` whose connections see only `app_id`'s tables."""
    pool = await asyncpg.create_pool(
        dsn, min_size=min_size, max_size=max_size, server_settings=_scoped(app_id)
    )
    assert pool is not None  # asyncpg types it Optional; it is None only when not awaited
    return pool


async def connect_server(dsn: str | None = None, **params: object) -> asyncpg.Connection:
    """A connection in no deployment's schema, for work on the server itself (creating roles
    and databases); `params` are asyncpg's (host, port, user, database, timeout...)."""
    return await asyncpg.connect(dsn, **params)


_pool: asyncpg.Pool | None = None


async def get_pool(settings: Settings) -> asyncpg.Pool:
    """The process's shared pool for this deployment, connecting on first use."""
    global _pool
    if _pool is None:
        try:
            _pool = await create_pool(settings.database_url, settings.app_id)
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
