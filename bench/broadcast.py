"""Broadcast to N people on the real stack, SIGKILL the worker half-way, check one outbox row each.

    .venv/bin/python -m bench.broadcast --people 100000 --kill-at 0.5

One worker (no API) with its own app id, topics, database and data dir. Identifies go straight
to the input topic in envelopes (`InputPublisher`). `--people` people are in the segment and
`--others` (default a tenth as many) are not. A first broadcast runs undisturbed; with
`--kill-at F`, a second one is interrupted by SIGKILL once F of its outbox rows are in (or,
with `--kill-when scanned`, once its checkpoints count F of the people scanned), and the worker
restarted. Each must end with exactly one outbox row per member and none for the others.
Without `--deliver`, delivery is parked (a relay nobody listens on, one message per thousand
seconds): only outbox rows count. With `--deliver`, an SMTP server in its own process counts
the emails: each broadcast is timed from its start to the last email accepted, must reach every
member, and reports the duplicates (`--kill-when emails` kills once F of the emails arrived).
Delivery then runs in `--deliver-processes` `nudge deliver` processes (0: inside the worker).

    .venv/bin/python -m bench.broadcast --people 1000000 --kill-at 0.5 --kill-when emails --deliver
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from agents.broadcast.plan import plan_broadcast
from agents.broadcast.publish import start_scan
from deploy.local import kafka, postgres, stack
from deploy.local.runner import NudgeProcesses, free_port, nudge_env
from schemas.campaigns import Campaign
from schemas.inputs import Identify
from streams.database import connect, create_pool
from streams.http.publisher import InputPublisher
from bench.smtp_server import SmtpServer
from streams.settings import Settings

PARTITIONS = 4
SEGMENT = "bench_members"
CAMPAIGN = Campaign.model_validate({"id": "bench_broadcast", "steps": [{"send": "bench_broadcast"}]})
PROJECT = {
    "campaigns/bench_broadcast.yaml": "id: bench_broadcast\nsteps: [{send: bench_broadcast}]\n",
    f"segments/{SEGMENT}.yaml": f"id: {SEGMENT}\nwhen: {{attribute: plan, eq: pro}}\n",
    "templates/bench_broadcast.html": "---\nsubject: News\n---\n<p>Hi {{ customer.name }}</p>\n",
}
# Identifies handed to the publisher at once (it sends one envelope per partition per batch).
_PUBLISH_CHUNK = 4000
# Seconds between polls of PostgreSQL while waiting.
_POLL = 0.25


class BenchFailed(AssertionError):
    """A check failed: the broadcast did not leave exactly one outbox row per member."""


@dataclass
class BroadcastRun:
    """One broadcast's figures (seconds are wall clock; rate is members per second)."""

    scan_id: str
    members: int
    seconds: float
    scan_seconds: float = 0.0
    killed_at_rows: int | None = None
    killed_at_scanned: int | None = None
    killed_at_emails: int | None = None
    restart_seconds: float | None = None
    # With --deliver: emails the members got in all, and how many went more than once.
    emails: int | None = None
    duplicates: int | None = None

    @property
    def rate(self) -> float:
        """Members per second, from the start message to the last outbox row."""
        return self.members / self.seconds if self.seconds > 0 else 0.0


def parse() -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=100_000, help="segment members")
    parser.add_argument("--others", type=int, default=None, help="people not in the segment (default people/10)")
    parser.add_argument("--kill-at", type=float, default=None,
                        help="also run a broadcast whose worker is SIGKILLed at this fraction of outbox rows")
    parser.add_argument("--kill-when", choices=("rows", "scanned", "emails"), default="rows",
                        help="count the --kill-at fraction in outbox rows, in people the scan has checkpointed "
                             "(the scan outruns the sender, so 'rows' usually kills after the scan ended), or "
                             "in emails accepted (with --deliver)")
    parser.add_argument("--deliver", action="store_true",
                        help="deliver to an SMTP server and count the emails, not only the outbox rows")
    parser.add_argument("--deliver-processes", type=int, default=1,
                        help="with --deliver: nudge deliver processes (0: delivery inside the worker)")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds allowed for each wait")
    parser.add_argument("--keep", action="store_true", help="keep the database, data dir and logs")
    return parser.parse_args()


def person_id(index: int) -> str:
    """The bench's person ids: fixed width, so RocksDB order is index order."""
    return f"b{index:07d}"


async def identify_all(env: dict[str, str], members: int, others: int) -> float:
    """Publish one identify per person (members on plan pro); return seconds until Kafka acked all."""
    publisher = InputPublisher(
        env["NUDGE_KAFKA_BOOTSTRAP"], f"{env['NUDGE_APP_ID']}-input", PARTITIONS, max_batch=_PUBLISH_CHUNK
    )
    await publisher.start()
    began = time.monotonic()
    try:
        now = time.time()
        total = members + others
        for first in range(0, total, _PUBLISH_CHUNK):
            await publisher.publish([
                Identify(
                    person=person_id(i), at=now,
                    attributes={"email": f"{person_id(i)}@example.com", "name": f"P{i}",
                                "plan": "pro" if i < members else "free"},
                )
                for i in range(first, min(total, first + _PUBLISH_CHUNK))
            ])
        return time.monotonic() - began
    finally:
        await publisher.stop()


class Database:
    """The few queries the bench polls, on one connection."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def members(self) -> int:
        """People in the segment, as the projector recorded them."""
        return await self.conn.fetchval("SELECT count(*) FROM segment_members WHERE segment = $1", SEGMENT)

    async def people(self) -> int:
        """People in the read model (members and others)."""
        return await self.conn.fetchval("SELECT count(*) FROM people")

    async def definitions_recorded(self) -> bool:
        """The worker has recorded the segment definitions (and started their backfill)."""
        return bool(await self.conn.fetchval("SELECT count(*) FROM segment_definitions"))

    async def rows(self, scan_id: str) -> int:
        """Outbox rows of one broadcast."""
        return await self.conn.fetchval("SELECT count(*) FROM outbox WHERE journey_id = $1", f"broadcast:{scan_id}")

    async def message_ids(self, scan_id: str) -> set[str]:
        """The message ids of one broadcast's outbox rows."""
        records = await self.conn.fetch(
            "SELECT message_id FROM outbox WHERE journey_id = $1", f"broadcast:{scan_id}"
        )
        return {r["message_id"] for r in records}

    async def scanned(self, scan_id: str) -> int:
        """People the scan has checkpointed, over all partitions."""
        return await self.conn.fetchval(
            "SELECT coalesce(sum(scanned), 0)::bigint FROM broadcast_progress WHERE broadcast = $1", scan_id
        )

    async def done(self, scan_id: str) -> bool:
        """Every partition of the scan finished."""
        return bool(await self.conn.fetchval(
            "SELECT bool_and(done) FROM broadcast_progress WHERE broadcast = $1", scan_id
        ))

    async def span(self, scan_id: str) -> float:
        """Seconds from the broadcast's record to its last outbox row (both on the database clock)."""
        return await self.conn.fetchval(
            """SELECT extract(epoch FROM max(o.created_at) - b.created_at)::float8
               FROM outbox o, broadcasts b
               WHERE o.journey_id = 'broadcast:' || b.id AND b.id = $1 GROUP BY b.created_at""",
            scan_id,
        )

    async def scan_span(self, scan_id: str) -> float:
        """Seconds from the broadcast's record to its last partition's final checkpoint."""
        return await self.conn.fetchval(
            """SELECT extract(epoch FROM max(p.updated_at) - b.created_at)::float8
               FROM broadcast_progress p JOIN broadcasts b ON b.id = p.broadcast
               WHERE b.id = $1 GROUP BY b.created_at""",
            scan_id,
        )

    async def check(self, scan_id: str, members: int) -> dict[str, int]:
        """Exactly one row per member, none for anyone else; raise BenchFailed otherwise."""
        journey = f"broadcast:{scan_id}"
        await self.conn.execute("ANALYZE outbox")
        figures = {
            "rows": await self.rows(scan_id),
            "distinct_people": await self.conn.fetchval(
                "SELECT count(DISTINCT person) FROM outbox WHERE journey_id = $1", journey
            ),
            "non_members": await self.conn.fetchval(
                """SELECT count(*) FROM outbox o WHERE o.journey_id = $1 AND NOT EXISTS
                   (SELECT 1 FROM segment_members m WHERE m.segment = $2 AND m.person = o.person)""",
                journey, SEGMENT,
            ),
            # A join on the broadcast's distinct people, not NOT EXISTS: with the outbox's
            # statistics stale after 100,000 inserts, that became a nested loop of seq scans.
            "members_without_row": await self.conn.fetchval(
                """SELECT count(*) FROM segment_members m
                   LEFT JOIN (SELECT DISTINCT person FROM outbox WHERE journey_id = $1) o USING (person)
                   WHERE m.segment = $2 AND o.person IS NULL""",
                journey, SEGMENT,
            ),
        }
        wanted = {"rows": members, "distinct_people": members, "non_members": 0, "members_without_row": 0}
        if figures != wanted:
            raise BenchFailed(f"broadcast {scan_id}: got {figures}, wanted {wanted}")
        return figures


async def wait_async(predicate: Callable[[], Awaitable[Any]], timeout: float, what: str) -> Any:
    """Poll the async `predicate` until truthy; raise TimeoutError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = await predicate()
        if value:
            return value
        await asyncio.sleep(_POLL)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")


async def broadcast(
    db: Database, processes: NudgeProcesses, members: int, people: int, timeout: float,
    kill_at: float | None, kill_when: str = "rows", sink: SmtpServer | None = None,
) -> BroadcastRun:
    """Start a broadcast as the CLI does; optionally SIGKILL and restart the worker; wait for the end."""
    env = processes.env
    starts = plan_broadcast(CAMPAIGN, SEGMENT, PARTITIONS)
    scan_id = starts[0].id
    emails_before = len(sink.accepted()) if sink is not None else 0
    started = time.time()
    pool = await create_pool(env["NUDGE_DATABASE_URL"], env["NUDGE_APP_ID"], max_size=2)
    try:
        await start_scan(pool, Settings.from_env(env), starts)
    finally:
        await pool.close()
    run = BroadcastRun(scan_id=scan_id, members=members, seconds=0.0)
    if kill_at is not None:
        if kill_when == "rows":
            threshold = max(1, int(members * kill_at))
            await wait_async(lambda: _at_least(db, scan_id, threshold), timeout, f"{threshold} outbox rows")
        elif kill_when == "emails":
            if sink is None:
                raise BenchFailed("--kill-when emails needs --deliver")
            threshold = emails_before + max(1, int(members * kill_at))
            await wait_async(lambda: _async(len(sink.accepted()) >= threshold), timeout,
                             f"{threshold - emails_before} emails")
        else:
            threshold = max(1, int(people * kill_at))
            await wait_async(lambda: _reached(lambda: db.scanned(scan_id), threshold), timeout,
                             f"{threshold} people scanned")
        processes.kill_worker()
        run.killed_at_rows = await db.rows(scan_id)
        run.killed_at_scanned = await db.scanned(scan_id)
        if sink is not None:
            run.killed_at_emails = len(sink.accepted()) - emails_before
        if run.killed_at_rows >= members and sink is None:
            raise BenchFailed(f"the broadcast finished ({run.killed_at_rows} rows) before the kill")
        began = time.monotonic()
        # start_worker blocks (it polls a log file): run it off the event loop.
        await asyncio.to_thread(processes.start_worker)
        run.restart_seconds = time.monotonic() - began
    await wait_async(lambda: db.done(scan_id), timeout, f"broadcast {scan_id} to finish scanning")
    await wait_async(lambda: _at_least(db, scan_id, members), timeout, f"{members} outbox rows")
    if sink is not None:
        ids = await db.message_ids(scan_id)
        await wait_async(lambda: _async(len(ids & {m for m, _ in sink.accepted()}) >= members),
                         timeout, f"{members} emails")
    # Anything still in flight would land now: a duplicate or stray row must not hide.
    await asyncio.sleep(2.0)
    await db.check(scan_id, members)
    run.seconds = await db.span(scan_id)
    run.scan_seconds = await db.scan_span(scan_id)
    if sink is not None:
        mine = [(m, at) for m, at in sink.accepted() if m in ids]
        run.emails = len(mine)
        run.duplicates = len(mine) - len({m for m, _ in mine})
        run.seconds = max(at for _, at in mine) - started
    return run


async def _async(value: object) -> object:
    return value


async def _at_least(db: Database, scan_id: str, count: int) -> bool:
    return await db.rows(scan_id) >= count


async def measure(
    args: argparse.Namespace, processes: NudgeProcesses, sink: SmtpServer | None = None
) -> dict[str, object]:
    """Identify everyone, wait for the segment, run the broadcasts; return the figures."""
    others = args.others if args.others is not None else args.people // 10
    total = args.people + others
    conn = await connect(processes.env["NUDGE_DATABASE_URL"], processes.env["NUDGE_APP_ID"])
    try:
        db = Database(conn)
        # The worker's first backfill (of the new segment definition) scans whoever exists
        # then: let it run on nobody rather than half-way through the identifies.
        await wait_async(db.definitions_recorded, args.timeout, "the segment definition backfill")
        began = time.monotonic()
        produced = await identify_all(processes.env, args.people, others)
        await wait_async(lambda: _reached(db.members, args.people), args.timeout, "the segment to fill")
        filled = time.monotonic() - began
        # Non-members too, so every broadcast scans the same population.
        await wait_async(lambda: _reached(db.people, total), args.timeout, "every person in the read model")
        figures: dict[str, object] = {
            "people": total, "members": args.people,
            "identify_per_second": round(total / produced),
            "segment_fill_seconds": round(filled, 1),
        }
        clean = await broadcast(db, processes, args.people, total, args.timeout, None, sink=sink)
        _report(figures, "broadcast", clean)
        if args.kill_at is not None:
            killed = await broadcast(db, processes, args.people, total, args.timeout, args.kill_at,
                                     args.kill_when, sink=sink)
            _report(figures, "broadcast_killed", killed)
            figures["broadcast_killed_at_rows"] = killed.killed_at_rows
            figures["broadcast_killed_at_scanned"] = killed.killed_at_scanned
            figures["broadcast_killed_at_emails"] = killed.killed_at_emails
            figures["broadcast_killed_when"] = args.kill_when
            figures["broadcast_killed_restart_seconds"] = round(killed.restart_seconds or 0.0, 1)
        return figures
    finally:
        await conn.close()


async def _reached(count: Callable[[], Awaitable[int]], wanted: int) -> bool:
    return await count() >= wanted


def _report(figures: dict[str, object], name: str, run: BroadcastRun) -> None:
    figures[f"{name}_seconds"] = round(run.seconds, 1)
    figures[f"{name}_per_second"] = round(run.rate)
    # The scan alone (to its last checkpoint): it outruns the sender agent that fills the outbox.
    figures[f"{name}_scan_seconds"] = round(run.scan_seconds, 1)
    if run.emails is not None:
        figures[f"{name}_emails"] = run.emails
        figures[f"{name}_duplicate_emails"] = run.duplicates
        figures[f"{name}_every_member_exactly_once"] = run.emails == run.members and run.duplicates == 0


def main() -> None:
    """Run the bench; print its figures as JSON; exit 1 if a check failed."""
    args = parse()
    began = time.monotonic()
    stack.up()
    run_id = uuid.uuid4().hex[:10]
    database = f"nudge_bench_broadcast_{run_id}"
    workdir = Path(tempfile.mkdtemp(prefix=f"nudge-bench-broadcast-{run_id}-"))
    project = workdir / "project"
    for relative, text in PROJECT.items():
        (project / relative).parent.mkdir(parents=True, exist_ok=True)
        (project / relative).write_text(text)
    sink = SmtpServer(workdir / "received.txt") if args.deliver else None
    if sink is not None:
        sink.start()
    env = nudge_env(
        app_id=f"bb{run_id}",
        database_url=postgres.create_database(database),
        # Without --deliver nobody listens there, and one message per 1,000 s: delivery stays
        # parked, off the CPU.
        smtp_url=sink.url if sink is not None else f"smtp://127.0.0.1:{free_port()}",
        data_dir=workdir / "data",
        campaigns_dir=project,
        kafka_bootstrap=kafka.BOOTSTRAP,
    )
    deliverers: list[subprocess.Popen[bytes]] = []
    if sink is None:
        env["NUDGE_SMTP_RATE_PER_SECOND"] = "0.001"
    elif args.deliver_processes:
        env["NUDGE_DELIVERY_LOOPS"] = "0"
    processes = NudgeProcesses(env, workdir / "logs")
    failed = False
    try:
        processes.start_worker()
        for n in range(args.deliver_processes if sink is not None else 0):
            deliverers.append(subprocess.Popen(
                [sys.executable, "-m", "streams.cli", "deliver", "--loops", "1"], env=env,
                stdout=open(workdir / "logs" / f"deliver-{n}.log", "ab"), stderr=subprocess.STDOUT,
            ))
        figures = asyncio.run(measure(args, processes, sink))
    except (BenchFailed, TimeoutError) as exc:
        failed = True
        figures = {"error": str(exc)}
    finally:
        # The parked delivery loop would hold a graceful stop for its whole timeout.
        if processes.worker is not None and processes.worker.poll() is None:
            processes.kill_worker()
        for deliverer in deliverers:
            deliverer.terminate()
            deliverer.wait(timeout=60)
        if sink is not None:
            sink.stop()
    figures["total_seconds"] = round(time.monotonic() - began, 1)
    figures["logs"] = str(workdir / "logs")
    print(json.dumps(figures, indent=2))
    if not args.keep and not failed:
        postgres.drop_database(database)
        shutil.rmtree(workdir, ignore_errors=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
