"""On the real stack: checkpoints leave the changelog able to rebuild every person exactly."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from rocksdict import AccessType, Options, Rdict

from deploy.local.runner import caught_up, delete_topics, wait_for
from streams.database import connect

pytestmark = pytest.mark.integration

WELCOME = "id: welcome\ntrigger: {event: signed_up}\nsteps: [{send: welcome}, {wait: 1h}, {send: later}]\n"
TEMPLATES = {
    "welcome": '---\nsubject: "Welcome, {{ customer.first_name }}"\n---\n<p>Hi.</p>\n',
    "later": '---\nsubject: "Later"\n---\n<p>Later.</p>\n',
}
PEOPLE = 60


def people_in(data_dir: Path) -> dict[bytes, bytes]:
    """Every key and value of the people table a (stopped) worker left in `data_dir`."""
    found: dict[bytes, bytes] = {}
    paths = sorted(data_dir.rglob("people-*.db"))
    assert paths, f"no people table under {data_dir}"
    for path in paths:
        options = Options(raw_mode=True)
        db = Rdict(str(path), options=options, access_type=AccessType.read_only())
        try:
            for key, value in db.items():
                if not key.startswith(b"__faust"):
                    found[bytes(key)] = bytes(value)
        finally:
            db.close()
    return found


async def marker_delivered(nudge) -> bool:
    conn = await connect(nudge.settings.database_url, nudge.settings.app_id)
    try:
        return bool(await conn.fetchval(
            "SELECT count(*) FROM activity WHERE person = 'marker' AND kind = 'delivery'"
        ))
    finally:
        await conn.close()


def test_a_worker_restoring_from_the_changelog_alone_has_exactly_the_old_workers_state(start_nudge, inbox):
    nudge = start_nudge({"campaigns/welcome.yaml": WELCOME} | {f"templates/{k}.html": v for k, v in TEMPLATES.items()})
    for n in range(PEOPLE):
        person = f"p{n:03d}"
        assert nudge.request("PUT", f"/api/v1/customers/{person}", {"email": f"{person}@example.com", "first_name": f"P{n}"})[0] == 200
        assert nudge.request("POST", f"/api/v1/customers/{person}/events", {"name": "signed_up", "data": {"n": n}})[0] == 200
        if n % 3 == 0:
            assert nudge.request("POST", f"/api/v1/customers/{person}/events", {"name": "viewed", "id": f"v{n}"})[0] == 200
    assert nudge.request("DELETE", "/api/v1/customers/p001")[0] == 200
    # A marker signup after everything else: its welcome comes once the rest is applied.
    assert nudge.request("PUT", "/api/v1/customers/marker", {"email": "m@example.com", "first_name": "M"})[0] == 200
    assert nudge.request("POST", "/api/v1/customers/marker/events", {"name": "signed_up"})[0] == 200
    wait_for(lambda: any(m.rcpt_tos == ["m@example.com"] for m in inbox.received), 60, what="the marker's welcome")
    # Its delivery outcome comes back as an input; once applied and everything is committed,
    # the worker holds every input there is.
    wait_for(lambda: asyncio.run(marker_delivered(nudge)), 60, what="the marker's delivery outcome applied")
    wait_for(lambda: asyncio.run(caught_up(nudge.settings, nudge.settings.input_topic)), 60, what="the inputs committed")
    nudge.stop()
    old_dir = Path(nudge.env["NUDGE_DATA_DIR"])
    before = people_in(old_dir)
    assert len(before) >= PEOPLE  # people, the marker and the erasure marker of p001
    assert b"p001" not in before

    # The new worker restores in bulk before Faust starts (any partition a record behind).
    nudge.env["NUDGE_DATA_DIR"] = str(old_dir.parent / "fresh-data")
    nudge.env["NUDGE_RESTORE_BULK_MIN_RECORDS"] = "1"
    nudge.start_worker()
    assert "in bulk" in (nudge.log_dir / "worker-2.log").read_text()
    wait_for(lambda: "Restore complete" in (nudge.log_dir / "worker-2.log").read_text() or
             "Recovery complete" in (nudge.log_dir / "worker-2.log").read_text(), 60, what="the restore")
    nudge.stop()
    assert people_in(Path(nudge.env["NUDGE_DATA_DIR"])) == before


def test_a_data_dir_ahead_of_its_changelog_is_rebuilt_instead_of_crashing_the_worker(start_nudge, inbox):
    nudge = start_nudge({"campaigns/welcome.yaml": WELCOME} | {f"templates/{k}.html": v for k, v in TEMPLATES.items()})
    for n in range(8):
        assert nudge.request("PUT", f"/api/v1/customers/old{n}", {"email": f"old{n}@example.com", "first_name": "O"})[0] == 200
        assert nudge.request("POST", f"/api/v1/customers/old{n}/events", {"name": "signed_up"})[0] == 200
    wait_for(lambda: len(inbox.received) >= 8, 60, what="the first welcomes")
    nudge.stop()
    # The topics go (a reset cluster, or another deployment reusing the data dir); the data stays.
    delete_topics(nudge.env["NUDGE_KAFKA_BOOTSTRAP"], nudge.env["NUDGE_APP_ID"])
    wait_for(lambda: not asyncio.run(topics_left(nudge)), 30, what="the topics to be deleted")

    nudge.start_api()
    nudge.start_worker()
    log = (nudge.log_dir / "worker-2.log").read_text()
    assert "is rebuilt from the changelog" in log
    assert nudge.request("PUT", "/api/v1/customers/new", {"email": "new@example.com", "first_name": "N"})[0] == 200
    assert nudge.request("POST", "/api/v1/customers/new/events", {"name": "signed_up"})[0] == 200
    wait_for(lambda: any(m.rcpt_tos == ["new@example.com"] for m in inbox.received), 60, what="a welcome after the reset")


async def topics_left(nudge) -> list[str]:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=nudge.env["NUDGE_KAFKA_BOOTSTRAP"])
    await admin.start()
    try:
        return [t for t in await admin.list_topics() if t.startswith(nudge.env["NUDGE_APP_ID"] + "-")]
    finally:
        await admin.close()
