"""What every section shares: Kafka helpers, a recording SMTP sink, and isolated Nudge deployments."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiosmtpd.controller import Controller

from bench.workload import Message
from deploy.local import kafka, postgres
from deploy.local.runner import NudgeProcesses, delete_topics, free_port, nudge_env, wait_for
from streams import kafka_offsets
from streams.http.publisher import ensure_topic
from streams.settings import Settings

BENCH_DIR = Path(__file__).resolve().parent
CAMPAIGNS = BENCH_DIR / "campaigns"
BOOTSTRAP = kafka.BOOTSTRAP


class BenchError(RuntimeError):
    """A section could not produce its figure; the message says why."""


# ---- Kafka -------------------------------------------------------------------------------


async def produce(topic: str, messages: list[Message], acks: int | str = 1) -> float:
    """Send `messages` to `topic` (explicit partitions) and wait for every ack; return seconds."""
    producer = AIOKafkaProducer(
        bootstrap_servers=BOOTSTRAP, acks=acks, linger_ms=5,
        max_batch_size=1024 * 1024, max_request_size=8 * 1024 * 1024,
    )
    await producer.start()
    started = time.monotonic()
    try:
        pending = []
        for key, value, partition in messages:
            pending.append(await producer.send(topic, value=value, key=key, partition=partition))
            if len(pending) >= 5000:  # bounded memory of in-flight futures
                await asyncio.gather(*pending)
                pending = []
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return time.monotonic() - started


async def end_offsets(topic: str) -> dict[int, int]:
    """The end offset of every partition of `topic` on the local stack."""
    return await kafka_offsets.end_offsets(BOOTSTRAP, topic)


async def wait_committed(group: str, topic: str, targets: dict[int, int], timeout: float,
                         interval: float = 0.1) -> float:
    """Poll until `group` has committed at least `targets` on `topic`; return the monotonic time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = await kafka_offsets.committed_offsets(BOOTSTRAP, group, topic)
        if all(done.get(p, 0) >= end for p, end in targets.items() if end > 0):
            return time.monotonic()
        await asyncio.sleep(interval)
    raise BenchError(f"group {group} did not reach {targets} on {topic} within {timeout:.0f}s")


async def read_topic(topic: str, limit: int = 2_000_000) -> list[bytes]:
    """Every value on `topic` from the beginning to its current end (bounded by `limit`)."""
    ends = await end_offsets(topic)
    consumer = AIOKafkaConsumer(bootstrap_servers=BOOTSTRAP, enable_auto_commit=False,
                                auto_offset_reset="earliest", max_partition_fetch_bytes=8 * 1024 * 1024)
    await consumer.start()
    values: list[bytes] = []
    try:
        tps = [TopicPartition(topic, p) for p in ends]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        total = sum(ends.values())
        deadline = time.monotonic() + 120
        while len(values) < min(total, limit) and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500, max_records=10000)
            for records in batch.values():
                values.extend(r.value for r in records)
    finally:
        await consumer.stop()
    return values


# ---- SMTP sink ---------------------------------------------------------------------------


@dataclass
class SmtpSink:
    """An in-process SMTP server that accepts everything and notes when each recipient's mail came."""

    port: int = field(default_factory=free_port)
    arrivals: dict[str, float] = field(default_factory=dict)
    count: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        now = time.time()
        with self._lock:
            self.count += 1
            for rcpt in envelope.rcpt_tos:
                self.arrivals.setdefault(rcpt, now)
        return "250 2.0.0 Message accepted"


class SmtpServer:
    """Runs an `SmtpSink` on 127.0.0.1 in a thread."""

    def __init__(self) -> None:
        self.sink = SmtpSink()
        self._controller = Controller(self.sink, hostname="127.0.0.1", port=self.sink.port)

    def __enter__(self) -> SmtpSink:
        self._controller.start()
        return self.sink

    def __exit__(self, *exc: object) -> None:
        self._controller.stop()


# ---- processes ---------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process `pid` (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_bytes(pid: int) -> tuple[int, int]:
    """(resident, peak resident) bytes of process `pid`."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            name, amount, _unit = line.split()
            values[name] = int(amount) * 1024
    return values["VmRSS:"], values["VmHWM:"]


def dir_bytes(path: Path) -> int:
    """Total size of the files under `path`."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


_LOG_TIME = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})")


def log_time(log_path: Path, needle: str) -> float | None:
    """The Unix time of the first log line containing `needle` (Faust's `[date time,ms]` prefix)."""
    for line in log_path.read_text(errors="replace").splitlines():
        if needle in line:
            match = _LOG_TIME.match(line)
            if match:
                return datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
    return None


class Deployment:
    """One isolated Nudge (own app id, topics, database, data dirs) with any number of workers."""

    def __init__(self, root: Path, name: str, smtp_url: str, extra_env: dict[str, str] | None = None,
                 worker_module: str | None = None, api_module: str | None = None) -> None:
        self.app_id = f"bench{name}{uuid.uuid4().hex[:6]}"
        self.root = root / self.app_id
        self.database = f"nudge_{self.app_id}"
        self.database_url = postgres.create_database(self.database)
        self.env = nudge_env(
            app_id=self.app_id, database_url=self.database_url, smtp_url=smtp_url,
            data_dir=self.root / "data-0", campaigns_dir=CAMPAIGNS, kafka_bootstrap=BOOTSTRAP,
        )
        self.env.update(NUDGE_TIMER_TICK_SECONDS="0.25", NUDGE_RATE_LIMIT_PER_SECOND="0",
                        NUDGE_TRACK_OPENS="false", NUDGE_TRACK_CLICKS="false")
        self.env.update(extra_env or {})
        self.worker_module = worker_module
        self.api_module = api_module
        self.workers: list[NudgeProcesses] = []
        self.api: NudgeProcesses | None = None

    @property
    def input_topic(self) -> str:
        return Settings.from_env(self.env).input_topic

    @property
    def sends_topic(self) -> str:
        return Settings.from_env(self.env).sends_topic

    def start_worker(self, fresh_data: bool = True, timeout: float = 180.0) -> NudgeProcesses:
        """Start one more worker with its own data dir and web port; wait for Faust's Ready."""
        index = len(self.workers)
        env = dict(self.env)
        data_dir = self.root / f"data-{index}"
        if fresh_data and data_dir.exists():
            shutil.rmtree(data_dir)
        env.update(NUDGE_DATA_DIR=str(data_dir), NUDGE_WORKER_WEB_PORT=str(free_port()))
        processes = _Processes(env, self.root / f"logs-{index}", {"worker": self.worker_module})
        self.workers.append(processes)
        processes.start_worker(timeout=timeout)
        return processes

    def start_api(self) -> NudgeProcesses:
        """Start the HTTP API (rate limit off)."""
        self.api = _Processes(dict(self.env), self.root / "logs-api", {"api": self.api_module})
        self.api.start_api()
        return self.api

    async def warm_up(self, timeout: float = 120.0) -> None:
        """One input per partition, committed: every partition is assigned, restored and flowing."""
        from bench.workload import warmup

        await ensure_topic(BOOTSTRAP, self.input_topic, 4)
        await produce(self.input_topic, warmup(at=time.time()))
        await self.wait_input_done(timeout)

    async def wait_input_done(self, timeout: float) -> float:
        """Wait until the workers have committed everything now on the input topic."""
        return await wait_committed(self.app_id, self.input_topic, await end_offsets(self.input_topic), timeout)

    def data_dir(self, index: int = 0) -> Path:
        return Path(self.workers[index].env["NUDGE_DATA_DIR"])

    def stop(self, drop_database: bool = True) -> None:
        """Stop every process; drop the database and the data dirs."""
        for processes in [*self.workers, *([self.api] if self.api else [])]:
            processes.stop()
        if drop_database:
            postgres.drop_database(self.database)
            shutil.rmtree(self.root, ignore_errors=True)
            # Thousands of leftover partitions slow the broker, and every later figure with it.
            delete_topics(BOOTSTRAP, self.app_id)


class _Processes(NudgeProcesses):
    """NudgeProcesses whose worker or API may be an experiment's entry point (`-m module`)."""

    def __init__(self, env: dict[str, str], log_dir: Path, modules: dict[str, str | None]) -> None:
        super().__init__(env, log_dir)
        self._modules = modules

    def _spawn(self, command: str, log_name: str) -> subprocess.Popen[bytes]:
        module = self._modules.get(command)
        if module is None:
            return super()._spawn(command, log_name)
        log = open(self.log_dir / log_name, "ab")
        return subprocess.Popen([sys.executable, "-m", module], stdout=log,
                                stderr=subprocess.STDOUT, env=self.env)


def rate(count: float, seconds: float) -> float:
    """count / seconds, rounded for reports."""
    return round(count / seconds, 1) if seconds > 0 else 0.0


def wait_until(predicate: Any, timeout: float, what: str, interval: float = 0.1) -> Any:
    """`deploy.local.runner.wait_for`, re-exported so sections import one module."""
    return wait_for(predicate, timeout, interval, what)
