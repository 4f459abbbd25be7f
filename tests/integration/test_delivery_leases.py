"""Claims that cannot strand mail: leases, a restarted loop, a stalled loop, a relay outage."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable

import asyncpg
import pytest
from aiosmtpd.controller import Controller

from agents.sender import outbox
from agents.sender.delivery import DeliveryLoop
from agents.sender.smtp import SmtpPool
from schemas.commands import RenderContext, SendEmail
from schemas.templates import EmailTemplate
from streams import metrics
from streams.settings import Settings, SmtpRelay

pytestmark = pytest.mark.integration

SETTINGS = Settings(mail_from="Nudge <hello@nudge.test>", public_url="http://nudge.test")
TEMPLATES = {"welcome": EmailTemplate(id="welcome", subject="Welcome", body="<p>Hi</p>")}


class Reports(list):
    async def __call__(self, items) -> None:
        self.extend(items)


def send(message_id: str) -> SendEmail:
    return SendEmail(message_id=message_id, person=f"p-{message_id}", to=f"{message_id}@example.com",
                     template="welcome", decided_at=1000.0, context=RenderContext())


def reclaimed(outcome: str) -> float:
    return metrics.REGISTRY.get_sample_value(
        "nudge_delivery_leases_reclaimed_total", {"outcome": outcome}
    ) or 0.0


async def statuses(pool: asyncpg.Pool) -> dict[str, int]:
    return dict(await pool.fetch("SELECT status, count(*) FROM outbox GROUP BY status"))


@pytest.fixture
def smtp(smtp_server: Callable):
    return smtp_server()


async def test_a_restarted_loop_takes_its_own_claims_back_at_once_and_counts_them(db_pool, smtp):
    relay = SmtpPool(SmtpRelay(host=smtp.host, port=smtp.port), size=2)
    await outbox.insert_sends(db_pool, [send(f"m{i}") for i in range(6)])
    # The first run claimed six rows with a long lease and died (nothing recorded).
    await outbox.claim(db_pool, "host/0", 6, lease_seconds=600)
    before = reclaimed("owner_restarted")
    try:
        loop = DeliveryLoop(db_pool, relay, TEMPLATES, SETTINGS, Reports(), name="host/0")
        assert await loop.start() == 6
        while await loop.round():
            pass
    finally:
        await relay.close()
    assert reclaimed("owner_restarted") - before == 6
    assert await statuses(db_pool) == {"sent": 6}
    assert len(smtp.received) == 6


async def test_another_loops_expired_lease_goes_back_to_the_queue(db_pool, smtp):
    relay = SmtpPool(SmtpRelay(host=smtp.host, port=smtp.port), size=2)
    now = time.time()
    await outbox.insert_sends(db_pool, [send("m1")], now=now - 60)
    await outbox.claim(db_pool, "gone/0", 1, lease_seconds=5, now=now - 30)
    before = reclaimed("expired")
    try:
        loop = DeliveryLoop(db_pool, relay, TEMPLATES, SETTINGS, Reports(), name="other/0")
        assert await loop.reap() == 1
        assert await loop.round() == 1
    finally:
        await relay.close()
    assert reclaimed("expired") - before == 1
    assert await statuses(db_pool) == {"sent": 1}


async def test_a_loop_that_stalled_past_its_lease_sends_nothing_it_claimed(db_pool, smtp):
    relay = SmtpPool(SmtpRelay(host=smtp.host, port=smtp.port), size=2)
    await outbox.insert_sends(db_pool, [send(f"m{i}") for i in range(4)])
    loop = DeliveryLoop(db_pool, relay, TEMPLATES, SETTINGS, Reports(), name="zombie/0",
                        lease_seconds=0.4)
    try:
        await loop.start()
        rows = await loop.claim()
        await asyncio.sleep(0.5)  # frozen (SIGSTOP, a long pause) past the lease, no renewal
        await loop.deliver(rows)
    finally:
        await relay.close()
    assert smtp.received == []
    # The rows are not the zombie's any more: the reaper hands them to a live loop.
    assert await statuses(db_pool) == {"sending": 4}
    assert await outbox.requeue_expired(db_pool) == 4


async def test_a_running_loop_renews_its_leases_while_a_slow_relay_answers(db_pool, smtp):
    smtp.data_delay = 0.6
    relay = SmtpPool(SmtpRelay(host=smtp.host, port=smtp.port), size=1)
    await outbox.insert_sends(db_pool, [send(f"m{i}") for i in range(3)])
    loop = DeliveryLoop(db_pool, relay, TEMPLATES, SETTINGS, Reports(), name="slow/0",
                        lease_seconds=0.8, limit=3, idle_seconds=0.1)
    task = asyncio.create_task(loop.run())
    try:
        for _ in range(100):
            if (await statuses(db_pool)).get("sent") == 3:
                break
            await asyncio.sleep(0.1)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await relay.close()
    # Three sends of 0.6 s on one connection outlast the 0.8 s lease: only renewals kept it.
    assert await statuses(db_pool) == {"sent": 3}
    assert len(smtp.received) == 3
    assert await db_pool.fetchval("SELECT count(*) FROM message_events WHERE status = 'requeued'") == 0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_mail_due_while_the_relay_was_down_leaves_as_soon_as_it_is_back(db_pool, smtp_server):
    port = _free_port()
    relay = SmtpPool(SmtpRelay(host="127.0.0.1", port=port), size=2, probe_every=0.2)
    loop = DeliveryLoop(db_pool, relay, TEMPLATES, SETTINGS, Reports(), name="outage/0",
                        idle_seconds=0.1)
    task = asyncio.create_task(loop.run())
    controller = None
    try:
        await outbox.insert_sends(db_pool, [send(f"m{i}") for i in range(20)])
        for _ in range(50):
            if relay.health.down:
                break
            await asyncio.sleep(0.05)
        assert relay.health.down
        await asyncio.sleep(1.0)  # down for a while: nothing is lost, nothing gives up
        assert (await statuses(db_pool)).get("failed") is None

        from tests.integration.conftest import RecordingSmtp

        handler = RecordingSmtp(port=port)
        controller = Controller(handler, hostname="127.0.0.1", port=port)
        controller.start()
        back = time.monotonic()
        for _ in range(100):
            if (await statuses(db_pool)).get("sent") == 20:
                break
            await asyncio.sleep(0.05)
        took = time.monotonic() - back
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await relay.close()
        if controller is not None:
            controller.stop()
    assert await statuses(db_pool) == {"sent": 20}
    assert len({m.message["Message-ID"] for m in handler.received}) == 20 == len(handler.received)
    assert took < 3.0
    # The outage cost no attempts: each message was tried once when the relay answered.
    assert await db_pool.fetchval("SELECT max(attempts) FROM outbox") == 1
