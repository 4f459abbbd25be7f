"""Readiness checks shared by the worker and the API: each answers (ok, detail) within a timeout.

`/ready` answers 200 only when every check passes, 503 otherwise, with each check's detail, so a
load balancer or Kubernetes keeps traffic away from a process that cannot do its work yet.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import asyncpg

from schemas.errors import StateError
from streams.database import DatabaseUnavailable, get_pool
from streams.settings import Settings

CHECK_TIMEOUT_SECONDS = 2.0

Check = Callable[[], Awaitable[str]]


class NotReady(StateError):
    """A readiness check failed; the message says what is missing."""


@dataclass(frozen=True)
class CheckResult:
    """One check's outcome."""

    name: str
    ok: bool
    detail: str


async def run_checks(checks: dict[str, Check]) -> list[CheckResult]:
    """Run every check at once, each bounded by CHECK_TIMEOUT_SECONDS."""

    async def one(name: str, check: Check) -> CheckResult:
        try:
            return CheckResult(name, True, await asyncio.wait_for(check(), CHECK_TIMEOUT_SECONDS))
        except TimeoutError:
            return CheckResult(name, False, f"no answer within {CHECK_TIMEOUT_SECONDS:g}s")
        except NotReady as exc:
            return CheckResult(name, False, str(exc))
        except (OSError, asyncpg.PostgresError, DatabaseUnavailable) as exc:
            return CheckResult(name, False, f"{type(exc).__name__}: {exc}")

    return list(await asyncio.gather(*(one(n, c) for n, c in checks.items())))


def report(results: list[CheckResult]) -> tuple[int, dict[str, object]]:
    """The HTTP status and JSON body of `/ready`."""
    ok = all(r.ok for r in results)
    return (200 if ok else 503), {
        "ready": ok,
        "checks": {r.name: {"ok": r.ok, "detail": r.detail} for r in results},
    }


def postgres_check(settings: Settings) -> Check:
    """PostgreSQL answers a query on the shared pool."""

    async def check() -> str:
        started = time.monotonic()
        pool = await get_pool(settings)
        await pool.fetchval("SELECT 1")
        return f"answered in {(time.monotonic() - started) * 1000:.1f} ms"

    return check
