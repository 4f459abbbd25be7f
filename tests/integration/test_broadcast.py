"""Broadcasts and segment backfills on the real stack: each worker scans its own partitions."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from agents.broadcast.plan import plan_broadcast
from agents.broadcast.publish import start_scan
from agents.broadcast.store import scan_status
from deploy.local.runner import NudgeProcesses, wait_for
from schemas.broadcasts import BroadcastStatus
from schemas.campaigns import Campaign
from schemas.inputs import Identify
from streams.database import connect, create_pool
from streams.http.publisher import InputPublisher
from streams.settings import Settings

pytestmark = pytest.mark.integration

PEOPLE = 400
NEWSLETTER = Campaign.model_validate({"id": "newsletter", "steps": [{"send": "newsletter"}]})


PROJECT = {
    "campaigns/newsletter.yaml": "id: newsletter\nsteps: [{send: newsletter}]\n",
    "segments/pro.yaml": "id: pro\nwhen: {attribute: plan, eq: pro}\n",
    "templates/newsletter.html": "---\nsubject: News\n---\n<p>Hi {{ customer.name }}</p>\n",
}


@pytest.fixture
def nudge(start_nudge):
    return start_nudge(PROJECT, api=False)


def query(db: Settings, sql: str, *args):
    """One value from the deployment's tables (its own schema)."""
    async def run():
        conn = await connect(db.database_url, db.app_id)
        try:
            return await conn.fetchval(sql, *args)
        finally:
            await conn.close()
    return asyncio.run(run())


def identify_people(env: dict[str, str], count: int) -> None:
    """`count` people, every other one on plan pro (half the segment), all with an email."""
    async def run():
        publisher = InputPublisher(env["NUDGE_KAFKA_BOOTSTRAP"], f"{env['NUDGE_APP_ID']}-input", 4)
        await publisher.start()
        try:
            now = time.time()
            await publisher.publish([
                Identify(
                    person=f"p{i:05d}", at=now,
                    attributes={"email": f"p{i}@example.com", "plan": "pro" if i % 2 == 0 else "free", "name": f"P{i}"},
                )
                for i in range(count)
            ])
        finally:
            await publisher.stop()
    asyncio.run(run())


def broadcast(env: dict[str, str], rate: float | None = None) -> str:
    starts = plan_broadcast(NEWSLETTER, "pro", 4, rate=rate)

    async def run():
        pool = await create_pool(env["NUDGE_DATABASE_URL"], env["NUDGE_APP_ID"], max_size=2)
        try:
            await start_scan(pool, Settings.from_env(env), starts)
        finally:
            await pool.close()
    asyncio.run(run())
    return starts[0].id


def members(db: Settings) -> int:
    return query(db, "SELECT count(*) FROM segment_members WHERE segment = 'pro'")


def newsletters(db: Settings) -> int:
    return query(db, "SELECT count(*) FROM outbox WHERE template = 'newsletter'")


def status(db: Settings, scan_id: str) -> BroadcastStatus:
    async def run():
        pool = await create_pool(db.database_url, db.app_id, max_size=1)
        try:
            found = await scan_status(pool, scan_id)
        finally:
            await pool.close()
        assert found is not None
        return found
    return asyncio.run(run())


def received_by_member(inbox) -> Counter[str]:
    return Counter(m.rcpt_tos[0] for m in inbox.received)


def test_a_broadcast_sends_one_email_to_every_member_and_shows_its_progress(nudge: NudgeProcesses, inbox) -> None:
    db = nudge.settings
    identify_people(nudge.env, PEOPLE)
    wait_for(lambda: members(db) == PEOPLE // 2, 60, 0.5, "the segment to fill")
    scan_id = broadcast(nudge.env)
    wait_for(lambda: len(inbox.received) >= PEOPLE // 2, 60, 0.2, "every member's email")
    wait_for(lambda: status(db, scan_id).sent == PEOPLE // 2, 10, 0.2, "the progress to count them")
    time.sleep(1)
    got = received_by_member(inbox)
    assert set(got) == {f"p{i}@example.com" for i in range(0, PEOPLE, 2)}
    assert set(got.values()) == {1}
    progress = status(db, scan_id)
    assert (progress.queued, progress.sent, progress.failed) == (PEOPLE // 2, PEOPLE // 2, 0)
    assert progress.done and sum(p.scanned for p in progress.partitions) == PEOPLE


def test_a_broadcast_interrupted_by_a_crash_still_reaches_every_member(nudge: NudgeProcesses, inbox) -> None:
    db = nudge.settings
    identify_people(nudge.env, PEOPLE)
    wait_for(lambda: members(db) == PEOPLE // 2, 60, 0.5, "the segment to fill")
    # Held to 40/s at delivery, so the kill lands in the middle of it.
    scan_id = broadcast(nudge.env, rate=40.0)
    wait_for(lambda: len(inbox.received) >= 40, 60, 0.05, "some emails")
    nudge.kill_worker()
    assert len(inbox.received) < PEOPLE // 2
    nudge.start_worker()
    wait_for(lambda: len(received_by_member(inbox)) == PEOPLE // 2, 90, 0.2, "every member's email")
    time.sleep(1)
    got = received_by_member(inbox)
    assert len(got) == PEOPLE // 2
    # Only a message inside an SMTP exchange when the kill landed can go twice.
    assert sum(got.values()) - len(got) <= db.smtp_connections
    assert status(db, scan_id).sent == PEOPLE // 2


def test_a_broadcast_rate_holds_across_a_worker_and_a_delivery_process(nudge: NudgeProcesses, inbox) -> None:
    db = nudge.settings
    arrivals: list[float] = []
    original = inbox.handle_DATA

    async def handle_DATA(server, session, envelope):
        arrivals.append(time.monotonic())
        return await original(server, session, envelope)

    inbox.handle_DATA = handle_DATA
    deliver = subprocess.Popen(
        [sys.executable, "-m", "streams.cli", "deliver", "--loops", "2"],
        env=nudge.env, stdout=open(nudge.log_dir / "deliver.log", "ab"), stderr=subprocess.STDOUT,
    )
    try:
        identify_people(nudge.env, 160)
        wait_for(lambda: members(db) == 80, 60, 0.5, "the segment to fill")
        rate = 20.0
        scan_id = broadcast(nudge.env, rate=rate)
        wait_for(lambda: len(inbox.received) >= 80, 60, 0.2, "every member's email")
        owners = query(db, "SELECT count(DISTINCT split_part(detail, ' by ', 2)) FROM message_events"
                           " WHERE status = 'sending' AND message_id IN"
                           " (SELECT message_id FROM outbox WHERE journey_id = $1)", f"broadcast:{scan_id}")
    finally:
        deliver.send_signal(signal.SIGTERM)
        deliver.wait(timeout=30)
    assert owners >= 2, "both processes should have delivered part of it"
    arrivals.sort()
    # Slots are given out at the rate with a tenth of a second of burst and honoured up to a
    # quarter of a second late: at most rate * (w + 0.35) + 1 in any w seconds, measured at
    # the relay (plus a message of jitter on a loaded machine).
    window = 2.0
    for i, start in enumerate(arrivals):
        in_window = sum(1 for t in arrivals[i:] if t < start + window)
        assert in_window <= rate * (window + 0.35) + 2, (i, in_window)
    assert arrivals[-1] - arrivals[0] >= (80 - rate * 0.1 - 1) / rate - 0.5


def test_a_new_segment_definition_is_backfilled_for_existing_people(nudge: NudgeProcesses) -> None:
    db = nudge.settings
    identify_people(nudge.env, 100)
    wait_for(lambda: members(db) == 50, 60, 0.5, "the segment to fill")
    segments = Path(nudge.env["NUDGE_CAMPAIGNS_DIR"]) / "segments"
    (segments / "free.yaml").write_text("id: free\nwhen: {attribute: plan, eq: free}\n")
    wait_for(lambda: query(db, "SELECT count(*) FROM segment_members WHERE segment = 'free'") == 50, 60, 0.5, "the backfill")
    reason = query(db, "SELECT reason FROM broadcasts WHERE kind = 'reevaluate' ORDER BY created_at DESC LIMIT 1")
    assert "free" in reason
