"""Bring the whole local stack (Kafka, PostgreSQL, the inbox) up, down, or report on it."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, replace
from pathlib import Path
from types import ModuleType

from deploy.local import ServiceStatus, StackError, cache_dir, inbox, kafka, postgres, stack_dir

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
    """The NUDGE_* variables that point Nudge at the local stack (its running Kafka cluster)."""
    return {
        **kafka_environment(kafka.running_cluster()),
        "NUDGE_DATABASE_URL": postgres.dsn(),
        "NUDGE_SMTP_URL": f"smtp://{inbox.HOST}:{inbox.smtp_port()}",
    }


def kafka_environment(cluster: kafka.Cluster) -> dict[str, str]:
    """The NUDGE_* variables for Nudge on `cluster`: its brokers and, with 3, its replication."""
    env = {"NUDGE_KAFKA_BOOTSTRAP": cluster.bootstrap}
    if cluster.size > 1:
        env["NUDGE_REPLICATION_FACTOR"] = str(cluster.replication_factor)
        env["NUDGE_MIN_INSYNC_REPLICAS"] = str(cluster.min_insync_replicas)
    return env


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


def up(
    on_service: Callable[[ServiceStatus], None] | None = None, *, brokers: int | None = None
) -> StackStatus:
    """Start every service that is not running (already running ones are left alone).

    `brokers` (default NUDGE_KAFKA_BROKERS, else 1): how many Kafka brokers; 3 runs production's
    replication (3 replicas, 2 in sync).
    """
    started = time.monotonic()
    # Unless told otherwise, a cluster that already runs is the one wanted: `up` stays a no-op.
    cluster = kafka.running_cluster() if brokers is None and "NUDGE_KAFKA_BROKERS" not in os.environ \
        else kafka.cluster(brokers)

    def start(module: ModuleType) -> ServiceStatus:
        return kafka.up(cluster) if module is kafka else module.up()

    services = _for_each(start, on_service)
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


def installed_packages_file() -> Path:
    """Where deploy/install.sh records the system packages it installed (one per line)."""
    return cache_dir() / "installed-packages.txt"


@dataclass(frozen=True)
class Purged:
    """What `purge` removed."""

    paths: tuple[Path, ...]
    users: tuple[str, ...]
    packages: tuple[str, ...]


def purge(*, packages: bool = True) -> Purged:
    """Stop the stack, then delete what it and deploy/install.sh left on the machine.

    Removes the stack dir (every Kafka cluster, PostgreSQL's data wherever it lives, received
    mail, logs), the cache (Kafka's jars), the 'nudge' system user of earlier versions, and the
    system packages the installer recorded as installed by it (`apt-get purge`, as root).
    The repository and its .venv stay: they are the clone's.
    """
    down()
    removed: list[Path] = []
    # Only this stack's own server user of earlier versions; never one another stack still uses.
    legacy = postgres.legacy_os_user()
    server_user = postgres.server_user(postgres.server())
    if server_user is None or server_user.pw_name != legacy:
        legacy = None
    for cluster in kafka.stack_clusters():
        if any(node.pid() is not None for node in cluster.nodes):
            kafka.down(cluster)
        removed += kafka.purge(cluster)
    removed += postgres.purge()
    recorded = _recorded_packages() if packages else []
    for path in (stack_dir(), cache_dir()):
        if path.exists():
            shutil.rmtree(path)
            removed.append(path)
    users = []
    if legacy is not None:
        result = subprocess.run(["userdel", legacy], capture_output=True, text=True)
        if result.returncode != 0:
            # 8: a process still runs as it (another stack's PostgreSQL); leave it.
            raise StackError(f"could not remove the system user '{legacy}': {result.stderr.strip()}")
        users.append(legacy)
    if recorded:
        if os.geteuid() != 0:
            raise StackError(
                "removing the packages deploy/install.sh installed needs root: "
                f"sudo apt-get purge {' '.join(recorded)}"
            )
        result = subprocess.run(
            ["apt-get", "purge", "-y", "-qq", *recorded],
            capture_output=True, text=True, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )
        if result.returncode != 0:
            raise StackError(f"apt-get purge {' '.join(recorded)} failed:\n{result.stderr[-2000:]}")
    return Purged(tuple(removed), tuple(users), tuple(recorded))


def _recorded_packages() -> list[str]:
    try:
        lines = installed_packages_file().read_text().split()
    except FileNotFoundError:
        return []
    return sorted(set(lines))
