"""The delivery loop against a real PostgreSQL outbox and a real (in-process) SMTP server."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable

import asyncpg
import pytest

from agents.sender import outbox
from agents.sender.delivery import DeliveryLoop, unsubscribe_url
from agents.sender.smtp import SmtpSender
from schemas.commands import RenderContext, SendEmail
from schemas.inputs import Delivery
from schemas.templates import EmailTemplate
from streams.settings import Settings, SmtpRelay

pytestmark = pytest.mark.integration

SETTINGS = Settings(mail_from="Nudge <hello@nudge.test>", public_url="http://nudge.test")

TEMPLATES = {
    "welcome": EmailTemplate(
        id="welcome",
        subject="Welcome, {{ customer.first_name | default('there') }}!",
        body="<p>Your {{ event.plan }} account is ready.</p>"
        "<a href='{{ unsubscribe_url }}'>unsubscribe</a>",
    ),
    "broken": EmailTemplate(id="broken", subject="Hi", body="<p>{{ customer.coupon }}</p>"),
}


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


class Outcomes(list[Delivery]):
    async def __call__(self, outcomes: list[Delivery]) -> None:
        self.extend(outcomes)


def send(message_id: str, template: str = "welcome", to: str | None = "ana@example.com") -> SendEmail:
    return SendEmail(
        message_id=message_id,
        person="ana",
        to=to,
        template=template,
        campaign_id="welcome",
        decided_at=1000.0,
        context=RenderContext(customer={"first_name": "Ana"}, event={"plan": "trial"}),
    )


@pytest.fixture(autouse=True)
async def _no_suppressions(db_pool: asyncpg.Pool) -> None:
    # The shared fixture truncates only the tables of 001_init.sql.
    await db_pool.execute("TRUNCATE suppressions, subscription_preferences")


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def smtp(smtp_server: Callable):
    return smtp_server()


@pytest.fixture
async def sender(smtp):
    sender = SmtpSender(SmtpRelay(host=smtp.host, port=smtp.port), timeout=5)
    yield sender
    await sender.close()


async def deliver(pool, sender, clock, outcomes, **options) -> int:
    """One round of a delivery loop: claim a batch, deliver it, record everything."""
    loop = DeliveryLoop(pool, sender, TEMPLATES, options.pop("settings", SETTINGS), outcomes,
                        now_fn=clock, **options)
    return await loop.round()


async def test_delivered_message_arrives_rendered_and_row_reads_sent(
    db_pool: asyncpg.Pool, smtp, sender, clock: Clock
):
    outcomes = Outcomes()
    await outbox.insert_sends(db_pool, [send("m1")], now=clock())
    assert await deliver(db_pool, sender, clock, outcomes) == 1

    [mail] = smtp.received
    assert mail.rcpt_tos == ["ana@example.com"]
    assert mail.message["To"] == "ana@example.com"
    assert mail.message["Subject"] == "Welcome, Ana!"
    assert mail.message["Message-ID"] == "<m1@nudge.test>"
    unsubscribe = unsubscribe_url(SETTINGS, "m1", "ana")
    assert unsubscribe.startswith("http://nudge.test/unsubscribe/")
    assert mail.message["List-Unsubscribe"] == (
        f"<mailto:unsubscribe@nudge.test?subject=unsubscribe%20{unsubscribe.rsplit('/', 1)[1]}>,"
        f" <{unsubscribe}>"
    )
    assert mail.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    html = mail.message.get_body(("html",)).get_content()
    assert "Your trial account is ready." in html
    # Nudge's own links are not click-tracked.
    assert unsubscribe in html

    status = await outbox.message_status(db_pool, "m1")
    assert status is not None and status.row.status == "sent"
    assert status.row.smtp_response is not None and "Message accepted" in status.row.smtp_response
    assert [(o.message_id, o.status, o.person) for o in outcomes] == [("m1", "sent", "ana")]


async def test_451_then_250_delivers_exactly_one_copy_after_retry(
    db_pool: asyncpg.Pool, smtp, sender, clock: Clock
):
    smtp.data_replies.append("451 4.3.0 Try again later")
    outcomes = Outcomes()
    await outbox.insert_sends(db_pool, [send("m1")], now=clock())

    await deliver(db_pool, sender, clock, outcomes, jitter_fn=lambda: 0.0)
    status = await outbox.message_status(db_pool, "m1")
    assert status is not None and status.row.status == "queued"
    assert status.row.last_error is not None and "451" in status.row.last_error
    assert smtp.received == [] and outcomes == []

    # Not due yet: base 30 s with no jitter means 15 s minimum.
    assert await deliver(db_pool, sender, clock, outcomes) == 0
    clock.now += 60
    assert await deliver(db_pool, sender, clock, outcomes) == 1

    assert len(smtp.received) == 1
    status = await outbox.message_status(db_pool, "m1")
    assert status is not None and (status.row.status, status.row.attempts) == ("sent", 2)
    assert [o.status for o in outcomes] == ["sent"]


async def test_550_sends_nothing_fails_the_row_and_publishes_a_bounce(
    db_pool: asyncpg.Pool, smtp, sender, clock: Clock
):
    smtp.rcpt_replies["ana@example.com"] = "550 5.1.1 No such user"
    outcomes = Outcomes()
    await outbox.insert_sends(db_pool, [send("m1")], now=clock())
    await deliver(db_pool, sender, clock, outcomes)

    assert smtp.received == []
    status = await outbox.message_status(db_pool, "m1")
    assert status is not None and status.row.status == "failed"
    assert status.row.last_error is not None and "550" in status.row.last_error
    [outcome] = outcomes
    assert (outcome.status, outcome.message_id, outcome.template) == ("bounced", "m1", "welcome")
    assert outcome.reason is not None and "No such user" in outcome.reason


async def test_template_error_fails_only_that_row(
    db_pool: asyncpg.Pool, smtp, sender, clock: Clock
):
    outcomes = Outcomes()
    await outbox.insert_sends(db_pool, [send("bad", template="broken"), send("good")], now=clock())
    assert await deliver(db_pool, sender, clock, outcomes) == 2

    assert [m.message["Message-ID"] for m in smtp.received] == ["<good@nudge.test>"]
    bad = await outbox.message_status(db_pool, "bad")
    assert bad is not None and bad.row.status == "failed"
    assert bad.row.last_error is not None and "coupon" in bad.row.last_error
    assert bad.events[-1].status == "failed" and "coupon" in (bad.events[-1].detail or "")
    assert sorted((o.message_id, o.status) for o in outcomes) == [
        ("bad", "failed"), ("good", "sent")
    ]


async def test_unknown_template_fails_the_row_with_its_name(
    db_pool: asyncpg.Pool, smtp, sender, clock: Clock
):
    outcomes = Outcomes()
    await outbox.insert_sends(db_pool, [send("m1", template="nope")], now=clock())
    await deliver(db_pool, sender, clock, outcomes)
    status = await outbox.message_status(db_pool, "m1")
    assert status is not None and status.row.status == "failed"
    assert status.row.last_error == "unknown template 'nope'"
    assert smtp.received == []


async def test_person_without_address_fails_the_row(
    db_pool: asyncpg.Pool, smtp, sender, clock: Clock
):
    outcomes = Outcomes()
    await outbox.insert_sends(db_pool, [send("m1", to=None)], now=clock())
    await deliver(db_pool, sender, clock, outcomes)
    status = await outbox.message_status(db_pool, "m1")
    assert status is not None and status.row.status == "failed"
    assert [o.status for o in outcomes] == ["failed"]


def _closed_port() -> int:
    # Bound then released: nothing listens there, so connecting is refused.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_relay_down_puts_the_message_back_without_counting_an_attempt(
    db_pool: asyncpg.Pool, clock: Clock
):
    sender = SmtpSender(SmtpRelay(host="127.0.0.1", port=_closed_port()), timeout=2)
    outcomes = Outcomes()
    await outbox.insert_sends(db_pool, [send("m1")], now=clock())
    assert await deliver(db_pool, sender, clock, outcomes) == 1

    assert sender.health.down and "Connect" in sender.health.reason
    status = await outbox.message_status(db_pool, "m1")
    assert status is not None and (status.row.status, status.row.attempts) == ("queued", 0)
    assert status.row.next_attempt_at <= clock() + 0.001  # due at once (microsecond rounding)
    assert status.events[-1].status == "deferred" and "unreachable" in (status.events[-1].detail or "")
    assert outcomes == []


async def test_a_message_undelivered_past_the_give_up_age_fails(
    db_pool: asyncpg.Pool, clock: Clock
):
    sender = SmtpSender(SmtpRelay(host="127.0.0.1", port=_closed_port()), timeout=2)
    outcomes = Outcomes()
    await outbox.insert_sends(db_pool, [send("m1")], now=clock())
    await deliver(db_pool, sender, clock, outcomes)
    clock.now += SETTINGS.delivery_give_up_seconds + 1
    await deliver(db_pool, sender, clock, outcomes)

    status = await outbox.message_status(db_pool, "m1")
    assert status is not None and status.row.status == "failed"
    assert status.row.last_error is not None and status.row.last_error.startswith("gave up")
    assert [o.status for o in outcomes] == ["failed"]


async def test_repeated_4xx_replies_are_given_up_after_max_attempts(
    db_pool: asyncpg.Pool, smtp, sender, clock: Clock
):
    smtp.data_replies.extend(["451 4.3.0 Try again later"] * 3)
    outcomes = Outcomes()
    await outbox.insert_sends(db_pool, [send("m1")], now=clock())
    for _ in range(3):
        await deliver(db_pool, sender, clock, outcomes, max_attempts=3)
        clock.now += 24 * 3600

    status = await outbox.message_status(db_pool, "m1")
    assert status is not None and (status.row.status, status.row.attempts) == ("failed", 3)
    assert status.row.last_error is not None
    assert "gave up after 3 attempts" in status.row.last_error
    assert [e.status for e in status.events].count("retry") == 2
    assert [o.status for o in outcomes] == ["failed"]
    assert smtp.received == []


async def test_loop_delivers_after_wake_and_stops_cleanly_on_cancel(
    db_pool: asyncpg.Pool, smtp, sender
):
    outcomes = Outcomes()
    loop = DeliveryLoop(db_pool, sender, TEMPLATES, SETTINGS, outcomes, idle_seconds=30)
    task = asyncio.create_task(loop.run())
    await asyncio.sleep(0.2)  # let it go idle
    await outbox.insert_sends(db_pool, [send("m1")])
    loop.wake()
    for _ in range(100):
        if outcomes:
            break
        await asyncio.sleep(0.05)
    assert [o.status for o in outcomes] == ["sent"]
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(smtp.received) == 1


async def test_cancel_mid_send_finishes_that_send_and_records_it(
    db_pool: asyncpg.Pool, smtp, sender
):
    smtp.data_delay = 1.0
    loop = DeliveryLoop(db_pool, sender, TEMPLATES, SETTINGS, Outcomes(), idle_seconds=30)
    await outbox.insert_sends(db_pool, [send("m1")])
    task = asyncio.create_task(loop.run())
    for _ in range(100):
        status = await outbox.message_status(db_pool, "m1")
        if status is not None and status.row.status == "sending":
            break
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.2)  # now inside the SMTP conversation
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    # Graceful: the relay got it once and the row says so; nothing is left for the reaper.
    assert len(smtp.received) == 1
    status = await outbox.message_status(db_pool, "m1")
    assert status is not None and status.row.status == "sent"
    assert await outbox.requeue_expired(db_pool, now=time.time() + 601) == 0
