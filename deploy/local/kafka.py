"""A single-node KRaft Kafka broker run from Maven Central jars (no tarball, no Docker)."""

from __future__ import annotations

import asyncio
import base64
import shutil
import string
import subprocess
import time
import uuid
from dataclasses import replace
from pathlib import Path

from deploy.local import ServiceStatus, StackError, cache_dir, logs_dir, stack_dir
from deploy.local.process import locked, pid_alive, port_open, read_pid, run_sync, spawn, stop, tail

KAFKA_VERSION = "4.1.1"
LOG4J_VERSION = "2.24.3"
HOST = "127.0.0.1"
PORT = 19092
CONTROLLER_PORT = 19093
BOOTSTRAP = f"{HOST}:{PORT}"
READY_TIMEOUT = 60.0
# How the broker's pid is told apart from an unrelated process that reused the pid.
MAIN_CLASS = "kafka.Kafka"

_TEMPLATES = Path(__file__).resolve().parent.parent / "kafka"

# Small heap; C1-only JIT because on 2 cores C2 compilation competes with start-up.
JVM_FLAGS = [
    "-Xms256m",
    "-Xmx768m",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:+ExplicitGCInvokesConcurrent",
    "-XX:TieredStopAtLevel=1",
    "-Xshare:auto",
    "-Djava.awt.headless=true",
]


def home() -> Path:
    """The broker's folder in the stack dir: config, data (`data/`) and pid file."""
    return stack_dir() / "kafka"


def data_dir() -> Path:
    """Kafka's `log.dirs`: deleting it (with the broker stopped) resets all topics."""
    return home() / "data"


def log_file() -> Path:
    """The broker's log (stdout and Log4j output)."""
    return logs_dir() / "kafka.log"


def _pid_file() -> Path:
    return home() / "kafka.pid"


def libs_dir() -> Path:
    """The cached jars of the pinned Kafka version (filled by `fetch_jars`)."""
    return cache_dir() / f"kafka-{KAFKA_VERSION}-log4j-{LOG4J_VERSION}" / "libs"


def fetch_jars() -> Path:
    """Download Kafka and its Log4j2 backend with Maven into the cache, once; return the libs dir."""
    libs = libs_dir()
    done = libs.parent / ".complete"
    if done.exists():
        return libs
    mvn = shutil.which("mvn")
    if mvn is None:
        raise StackError(
            "Maven (mvn) is needed once to fetch Kafka's jars; run deploy/install.sh "
            "or `apt-get install maven`"
        )
    if libs.exists():
        shutil.rmtree(libs)  # a previous fetch was interrupted half-way
    libs.mkdir(parents=True)
    argv = [
        mvn, "-B", "-q",
        "-f", str(_TEMPLATES / "pom.xml"),
        # Keep Maven's own repository in the cache too, so nothing lands in ~/.m2.
        f"-Dmaven.repo.local={cache_dir() / 'm2'}",
        f"-Dkafka.version={KAFKA_VERSION}",
        f"-Dlog4j.version={LOG4J_VERSION}",
        "dependency:copy-dependencies",
        f"-DoutputDirectory={libs}",
        "-DincludeScope=runtime",
    ]
    result = subprocess.run(argv, capture_output=True, text=True)
    if result.returncode != 0:
        raise StackError(
            f"fetching Kafka {KAFKA_VERSION} with Maven failed (exit {result.returncode}); "
            f"is Maven Central reachable?\n{(result.stdout + result.stderr)[-3000:]}"
        )
    done.write_text(f"kafka {KAFKA_VERSION}, log4j {LOG4J_VERSION}\n")
    return libs


def _java() -> str:
    java = shutil.which("java")
    if java is None:
        raise StackError("Java 17+ is needed for Kafka; run deploy/install.sh or install openjdk-17-jre-headless")
    return java


def _write_config() -> Path:
    home().mkdir(parents=True, exist_ok=True)
    template = string.Template((_TEMPLATES / "server.properties.template").read_text())
    config = home() / "server.properties"
    config.write_text(
        template.substitute(
            host=HOST, port=PORT, controller_port=CONTROLLER_PORT, log_dirs=str(data_dir())
        )
    )
    return config


def _cluster_id() -> str:
    # Kafka's Uuid.randomUuid(): 16 random bytes, URL-safe base64 without padding, never
    # starting with "-" (it would parse as an option). Generated here to save a JVM start.
    while True:
        value = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not value.startswith("-"):
            return value


def _format(config: Path, libs: Path) -> None:
    if (data_dir() / "meta.properties").exists():
        return
    argv = [
        _java(), "-Xmx256m", "-XX:TieredStopAtLevel=1", "-Xshare:auto",
        f"-Dlog4j2.configurationFile={_TEMPLATES / 'log4j2.properties'}",
        "-cp", f"{libs}/*",
        "kafka.tools.StorageTool", "format",
        "-t", _cluster_id(), "-c", str(config), "--ignore-formatted",
    ]
    result = subprocess.run(argv, capture_output=True, text=True)
    with open(log_file(), "a") as log:
        log.write(f"\n=== formatting {data_dir()}\n{result.stdout}{result.stderr}")
    if result.returncode != 0:
        raise StackError(
            f"formatting Kafka's storage in {data_dir()} failed (exit {result.returncode}); "
            f"see {log_file()}\n{(result.stdout + result.stderr)[-2000:]}"
        )


def pid() -> int | None:
    """The broker's pid if it is running."""
    return read_pid(_pid_file(), MAIN_CLASS)


def status() -> ServiceStatus:
    """Whether the broker runs (pid alive and port open)."""
    current = pid()
    return ServiceStatus(
        name="kafka",
        running=current is not None and port_open(HOST, PORT),
        address=BOOTSTRAP,
        pid=current,
        log=log_file(),
    )


async def _metadata_ok(bootstrap: str, timeout_ms: int) -> bool:
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.errors import KafkaError

    client = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=timeout_ms)
    try:
        await client.start()
        await client.list_topics()
        return True
    except (KafkaError, OSError, asyncio.TimeoutError):
        return False
    finally:
        await client.close()


def metadata_ok(bootstrap: str = BOOTSTRAP, timeout: float = 5.0) -> bool:
    """True if a broker at `bootstrap` answers a metadata request (lists topics)."""
    return run_sync(_metadata_ok(bootstrap, int(timeout * 1000)))


def _wait_ready(broker_pid: int, deadline: float) -> None:
    while time.monotonic() < deadline:
        if not pid_alive(broker_pid):
            raise StackError(
                f"Kafka exited during start-up; see {log_file()}. Last lines:\n{tail(log_file())}"
            )
        if port_open(HOST, PORT) and metadata_ok(BOOTSTRAP, timeout=5.0):
            return
        time.sleep(0.25)
    raise StackError(
        f"Kafka did not answer a metadata request on {BOOTSTRAP} within {READY_TIMEOUT:.0f}s; "
        f"see {log_file()}. Last lines:\n{tail(log_file())}"
    )


def up() -> ServiceStatus:
    """Start the broker unless it already runs; return once it answers metadata requests."""
    with locked(stack_dir() / "kafka.lock"):
        return _up(time.monotonic())


def _up(started: float) -> ServiceStatus:
    current = pid()
    if current is not None:
        if not port_open(HOST, PORT):
            # Started by an earlier `up` that has not finished booting yet.
            _wait_ready(current, started + READY_TIMEOUT)
        return _done(status(), "already running", started)
    if port_open(HOST, PORT) or port_open(HOST, CONTROLLER_PORT):
        raise StackError(
            f"port {PORT} or {CONTROLLER_PORT} on {HOST} is taken by a process this stack did "
            f"not start (no live pid in {_pid_file()}); stop it, then run `nudge stack up` again"
        )
    libs = fetch_jars()
    config = _write_config()
    _format(config, libs)
    argv = [
        _java(), *JVM_FLAGS,
        f"-Dlog4j2.configurationFile={_TEMPLATES / 'log4j2.properties'}",
        f"-Dkafka.logs.dir={logs_dir()}",
        "-cp", f"{libs}/*",
        MAIN_CLASS, str(config),
    ]
    broker_pid = spawn(argv, log_file(), _pid_file(), cwd=home())
    try:
        _wait_ready(broker_pid, started + READY_TIMEOUT)
    except StackError:
        stop(broker_pid, timeout=5.0)
        raise
    return _done(status(), "started", started)


def down() -> bool:
    """Stop the broker (controlled shutdown, SIGKILL after 30 s); True if it was running."""
    current = pid()
    if current is None:
        return False
    stop(current, timeout=30.0)
    _pid_file().unlink(missing_ok=True)
    return True


def _done(state: ServiceStatus, action: str, started: float) -> ServiceStatus:
    return replace(state, action=action, seconds=time.monotonic() - started)
