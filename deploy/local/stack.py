"""Bring the whole local stack (Kafka, PostgreSQL, the inbox) up, down, or report on it."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, replace
from types import ModuleType

from deploy.local import ServiceStatus, StackError, inbox, kafka, postgres

# Start order only matters for reporting; the services do not depend on each other.
SERVICES = {"kafka": kafka, "postgres": postgres, "inbox": inbox}


@dataclass(frozen=True)
class StackStatus:
    """Every service's status, in a fixed order, and how long the whole call took."""

    services: tuple[ServiceStatus, ...]
    seconds: float = 0.0

    @property
    def running(self) -> bool:
        """True if every service runs."""
        return all(s.running for s in self.services)

    def __getitem__(self, name: str) -> ServiceStatus:
        for service in self.services:
            if service.name == name:
                return service
        raise KeyError(name)

    def env(self) -> dict[str, str]:
        """The NUDGE_* variables that point Nudge at this stack."""
        return environment()


def environment() -> dict[str, str]:
    """The NUDGE_* variables that point Nudge at the local stack (the Settings defaults)."""
    return {
        "NUDGE_KAFKA_BOOTSTRAP": kafka.BOOTSTRAP,
        "NUDGE_DATABASE_URL": postgres.dsn(),
        "NUDGE_SMTP_URL": f"smtp://{inbox.HOST}:{inbox.smtp_port()}",
    }


def _for_each(
    action: Callable[[ModuleType], ServiceStatus], on_service: Callable[[ServiceStatus], None] | None
) -> tuple[ServiceStatus, ...]:
    # In parallel: cold start then takes as long as Kafka alone instead of the sum.
    results: dict[str, ServiceStatus] = {}
    errors: list[str] = []
    with ThreadPoolExecutor(max_workers=len(SERVICES), thread_name_prefix="nudge-stack") as pool:
        futures = {pool.submit(action, module): name for name, module in SERVICES.items()}
        for future in as_completed(futures):
            name = futures[future]
            try:
                results[name] = future.result()
            except StackError as exc:
                errors.append(f"{name}: {exc}")
                continue
            if on_service is not None:
                on_service(results[name])
    if errors:
        raise StackError("\n\n".join(errors))
    return tuple(results[name] for name in SERVICES)


def up(on_service: Callable[[ServiceStatus], None] | None = None) -> StackStatus:
    """Start every service that is not running (already running ones are left alone)."""
    started = time.monotonic()
    services = _for_each(lambda module: module.up(), on_service)
    return StackStatus(services, time.monotonic() - started)


def down(on_service: Callable[[ServiceStatus], None] | None = None) -> StackStatus:
    """Stop every service (gracefully, then killed); data and messages are kept."""
    started = time.monotonic()

    def stop(module: ModuleType) -> ServiceStatus:
        began = time.monotonic()
        was_running = module.down()
        return replace(
            module.status(),
            action="stopped" if was_running else "not running",
            seconds=time.monotonic() - began,
        )

    services = _for_each(stop, on_service)
    return StackStatus(services, time.monotonic() - started)


def status() -> StackStatus:
    """Each service's current status."""
    started = time.monotonic()
    services = tuple(module.status() for module in SERVICES.values())
    return StackStatus(services, time.monotonic() - started)
