"""Names for delivery loops that survive a restart, so a loop can take its own leases back at once.

A process asks for `count` names under a base (NUDGE_DELIVERY_NAME, else the host name):
`<base>/0`, `<base>/1`, ... A name is free when nobody holds it, when its holder stopped
heartbeating a lease ago, or when its holder ran on this host and is gone (or had our pid:
a container restarted). A live process's names are never taken: a second process on the
same host gets the next ones. Heartbeats ride on the loops' lease renewals.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import asyncpg


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass(frozen=True)
class Holder:
    """Who held a name, as the registry recorded it."""

    host: str
    pid: int
    instance: str
    heartbeat_at: float


@dataclass(frozen=True)
class Me:
    """This process, as it signs its names."""

    host: str = field(default_factory=socket.gethostname)
    pid: int = field(default_factory=os.getpid)
    instance: str = field(default_factory=lambda: uuid.uuid4().hex)


def is_free(
    holder: Holder | None, me: Me, now: float, expiry_seconds: float,
    alive: Callable[[int], bool] = pid_alive,
) -> bool:
    """Whether `me` may take a name `holder` held (pure but for the liveness probe)."""
    if holder is None or holder.instance == me.instance:
        return True
    if holder.heartbeat_at < now - expiry_seconds:
        return True
    return holder.host == me.host and (holder.pid == me.pid or not alive(holder.pid))


def _ts(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


async def take_names(
    pool: asyncpg.Pool, base: str, count: int, me: Me, now: float, expiry_seconds: float,
    alive: Callable[[int], bool] = pid_alive,
) -> list[str]:
    """Hold `count` names `<base>/<i>`, the lowest free ones; each is then this process's."""
    names: list[str] = []
    index = 0
    while len(names) < count:
        name = f"{base}/{index}"
        index += 1
        async with pool.acquire() as conn, conn.transaction():
            # Serialise takers of one name; a missing row is inserted under the same lock.
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", name)
            record = await conn.fetchrow(
                "SELECT host, pid, instance, extract(epoch FROM heartbeat_at)::float8 AS at"
                " FROM delivery_loops WHERE name = $1",
                name,
            )
            holder = None if record is None else Holder(
                record["host"], record["pid"], record["instance"], record["at"]
            )
            if not is_free(holder, me, now, expiry_seconds, alive):
                continue
            await conn.execute(
                "INSERT INTO delivery_loops (name, host, pid, instance, heartbeat_at)"
                " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (name) DO UPDATE SET host = $2,"
                " pid = $3, instance = $4, heartbeat_at = $5",
                name, me.host, me.pid, me.instance, _ts(now),
            )
        names.append(name)
    return names


async def heartbeat(pool: asyncpg.Pool, name: str, me: Me, now: float) -> bool:
    """Record that `me` still holds `name`; False when another process took it."""
    status = await pool.execute(
        "UPDATE delivery_loops SET heartbeat_at = $3 WHERE name = $1 AND instance = $2",
        name, me.instance, _ts(now),
    )
    return status.endswith(" 1")


async def give_up(pool: asyncpg.Pool, names: list[str], me: Me) -> None:
    """Free `names` (a clean stop): the next process may take them at once."""
    await pool.execute(
        "DELETE FROM delivery_loops WHERE name = ANY($1) AND instance = $2", names, me.instance
    )
