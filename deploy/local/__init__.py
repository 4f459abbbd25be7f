"""The local development stack: Kafka, PostgreSQL and a development inbox, started by Nudge itself.

`deploy.local.stack` orchestrates; `kafka`, `postgres` and `inbox` each own one service.
State, data and logs live under NUDGE_STACK_DIR; Maven-fetched jars under NUDGE_CACHE_DIR.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from schemas.errors import StateError


class StackError(StateError, RuntimeError):
    """A local service could not be started or stopped; the message says what to check."""


@dataclass(frozen=True)
class ServiceStatus:
    """One service of the local stack as seen by `status()` or `up()`."""

    name: str
    running: bool
    address: str
    pid: int | None
    log: Path
    # What `up()` did ("started", "already running") or "" for a plain status.
    action: str = ""
    seconds: float = 0.0


def stack_dir() -> Path:
    """Where the stack keeps its data, pid files and logs (NUDGE_STACK_DIR)."""
    raw = os.environ.get("NUDGE_STACK_DIR") or "~/.local/share/nudge/stack"
    return Path(raw).expanduser().resolve()


def cache_dir() -> Path:
    """Where downloaded artefacts (Kafka's jars) are cached (NUDGE_CACHE_DIR)."""
    raw = os.environ.get("NUDGE_CACHE_DIR") or "~/.cache/nudge"
    return Path(raw).expanduser().resolve()


def logs_dir() -> Path:
    """The folder holding every service's log file."""
    path = stack_dir() / "logs"
    path.mkdir(parents=True, exist_ok=True)
    return path
