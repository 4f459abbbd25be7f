"""Broadcasts and segment backfills on the real stack: each worker scans its own partitions."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from agents.broadcast.plan import plan_broadcast
from agents.broadcast.publish import scans_topic, start_scan
from deploy.local.runner import NudgeProcesses, wait_for
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
            await start_scan(pool, env["NUDGE_KAFKA_BOOTSTRAP"], scans_topic(env["NUDGE_APP_ID"]), starts)
        finally:
            await pool.close()
    asyncio.run(run())
    return starts[0].id


def members(db: Settings) -> int:
    return query(db, "SELECT count(*) FROM segment_members WHERE segment = 'pro'")


def newsletters(db: Settings) -> int:
    return query(db, "SELECT count(*) FROM outbox WHERE template = 'newsletter'")


def test_a_broadcast_sends_once_to_every_member_of_the_segment(nudge: NudgeProcesses) -> None:
    db = nudge.settings
    identify_people(nudge.env, PEOPLE)
    wait_for(lambda: members(db) == PEOPLE // 2, 60, 0.5, "the segment to fill")
    scan_id = broadcast(nudge.env)
    wait_for(lambda: query(db, "SELECT bool_and(done) FROM broadcast_progress WHERE broadcast = $1", scan_id), 60, 0.5, "the broadcast to finish")
    # "done" means enqueued on the sends topic; the sender agent inserts them shortly after.
    wait_for(lambda: newsletters(db) >= PEOPLE // 2, 30, 0.2, "every send in the outbox")
    time.sleep(1)
    assert newsletters(db) == PEOPLE // 2
    assert query(db, "SELECT sum(scanned) FROM broadcast_progress WHERE broadcast = $1", scan_id) == PEOPLE
    assert query(db, "SELECT count(*) FROM outbox WHERE template = 'newsletter' AND to_address LIKE 'p%1@%'") == 0


def test_a_broadcast_interrupted_by_a_crash_resumes_without_double_sends(nudge: NudgeProcesses) -> None:
    db = nudge.settings
    identify_people(nudge.env, PEOPLE)
    wait_for(lambda: members(db) == PEOPLE // 2, 60, 0.5, "the segment to fill")
    scan_id = broadcast(nudge.env, rate=40.0)
    wait_for(lambda: query(db, "SELECT count(*) FROM outbox WHERE template = 'newsletter'") >= 40, 60, 0.2, "some sends")
    nudge.kill_worker()
    partly = query(db, "SELECT count(*) FROM outbox WHERE template = 'newsletter'")
    assert partly < PEOPLE // 2
    nudge.start_worker()
    wait_for(lambda: query(db, "SELECT bool_and(done) FROM broadcast_progress WHERE broadcast = $1", scan_id), 90, 0.5, "the broadcast to finish")
    wait_for(lambda: newsletters(db) >= PEOPLE // 2, 30, 0.2, "every send in the outbox")
    time.sleep(1)
    assert newsletters(db) == PEOPLE // 2


def test_a_new_segment_definition_is_backfilled_for_existing_people(nudge: NudgeProcesses) -> None:
    db = nudge.settings
    identify_people(nudge.env, 100)
    wait_for(lambda: members(db) == 50, 60, 0.5, "the segment to fill")
    segments = Path(nudge.env["NUDGE_CAMPAIGNS_DIR"]) / "segments"
    (segments / "free.yaml").write_text("id: free\nwhen: {attribute: plan, eq: free}\n")
    wait_for(lambda: query(db, "SELECT count(*) FROM segment_members WHERE segment = 'free'") == 50, 60, 0.5, "the backfill")
    reason = query(db, "SELECT reason FROM broadcasts WHERE kind = 'reevaluate' ORDER BY created_at DESC LIMIT 1")
    assert "free" in reason
