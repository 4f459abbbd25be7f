"""Delivery policies against real PostgreSQL and SMTP: suppression, topics, frequency limits,
dead letters, tracking links, the connection pool and a graceful stop mid-batch."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

import asyncpg
import pytest

from agents.sender import outbox, preferences, suppression
from agents.sender.dead_letter import DeadLetter
from agents.sender.delivery import DeliveryLoop
from agents.sender.links import verify
from agents.sender.smtp import SmtpPool, SmtpSender
from schemas.commands import RenderContext, SendEmail
from schemas.templates import EmailTemplate
from streams.settings import Settings, SmtpRelay

pytestmark = pytest.mark.integration

SETTINGS = Settings(mail_from="Nudge <hello@nudge.test>", public_url="http://nudge.test",
                    secret_key="k")

TEMPLATES = {
    "welcome": EmailTemplate(id="welcome", subject="Welcome",
                             body="<html><body><a href='https://shop.test/p?id=1'>Shop</a>"
                                  "<a href='{{ unsubscribe_url }}'>unsubscribe</a></body></html>"),
    "news": EmailTemplate(id="news", subject="News", body="<p>news</p>", topic="newsletter"),
}


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


class Recorder(list):
    """Records what the loop publishes: a batch of outcomes, or one dead letter, per call."""

    async def __call__(self, item) -> None:
        if isinstance(item, list):
            self.extend(item)
        else:
            self.append(item)


async def deliver_due(pool, sender, templates, settings, outcomes, clock=time.time, **options) -> int:
    """One round of a delivery loop: claim a batch, deliver it, record everything."""
    loop = DeliveryLoop(pool, sender, templates, settings, outcomes, now_fn=clock, **options)
    return await loop.round()


def send(message_id: str, template: str = "welcome", to: str = "ana@example.com", **extra) -> SendEmail:
    return SendEmail(message_id=message_id, person=extra.pop("person", "ana"), to=to,
                     template=template, campaign_id="c", decided_at=1000.0,
                     context=RenderContext(customer={"first_name": "Ana"}), **extra)


@pytest.fixture(autouse=True)
async def _clean(db_pool: asyncpg.Pool) -> None:
    await db_pool.execute("TRUNCATE suppressions, subscription_preferences, people")


@pytest.fixture
def smtp(smtp_server: Callable):
    return smtp_server()


@pytest.fixture
async def sender(smtp):
    sender = SmtpSender(SmtpRelay(host=smtp.host, port=smtp.port), timeout=5)
    yield sender
    await sender.close()


async def status_of(pool, message_id):
    status = await outbox.message_status(pool, message_id)
    assert status is not None
    return status


async def test_a_suppressed_address_is_not_sent_and_the_row_says_why(db_pool, smtp, sender):
    clock, outcomes = Clock(), Recorder()
    await suppression.suppress(db_pool, "ANA@example.com", "complaint")
    await outbox.insert_sends(db_pool, [send("m1")], now=clock())
    await deliver_due(db_pool, sender, TEMPLATES, SETTINGS, outcomes, clock)
    assert smtp.received == []
    status = await status_of(db_pool, "m1")
    assert status.row.status == "failed" and "suppression list (complaint)" in status.row.last_error
    assert status.events[-1].status == "suppressed"
    assert [(o.status, o.message_id) for o in outcomes] == [("failed", "m1")]
    # Removed from the list, the next message goes.
    assert await suppression.unsuppress(db_pool, "ana@example.com")
    await outbox.insert_sends(db_pool, [send("m2")], now=clock())
    await deliver_due(db_pool, sender, TEMPLATES, SETTINGS, outcomes, clock)
    assert len(smtp.received) == 1


async def test_hard_bounce_suppresses_the_address_and_dead_letters_the_message(db_pool, smtp, sender):
    clock, outcomes, letters = Clock(), Recorder(), Recorder()
    smtp.rcpt_replies["ana@example.com"] = "550 5.1.1 No such user"
    await outbox.insert_sends(db_pool, [send("m1")], now=clock())
    await deliver_due(db_pool, sender, TEMPLATES, SETTINGS, outcomes, clock,
                      publish_dead_letter=letters)
    entry = await suppression.suppression_of(db_pool, "ana@example.com")
    assert entry is not None and entry.reason == "hard_bounce" and "m1" in (entry.detail or "")
    assert [o.status for o in outcomes] == ["bounced"]
    [letter] = letters
    assert isinstance(letter, DeadLetter)
    assert (letter.message_id, letter.code, letter.attempts) == ("m1", 550, 1)
    assert "No such user" in letter.reason and letter.command.message_id == "m1"
    # The next message to that address is stopped before SMTP.
    smtp.rcpt_replies.clear()
    await outbox.insert_sends(db_pool, [send("m2")], now=clock())
    await deliver_due(db_pool, sender, TEMPLATES, SETTINGS, outcomes, clock)
    assert smtp.received == []
    assert (await status_of(db_pool, "m2")).events[-1].status == "suppressed"


async def test_a_data_550_is_a_hard_bounce_too(db_pool, smtp, sender):
    smtp.data_replies.append("550 5.7.1 Rejected")
    await outbox.insert_sends(db_pool, [send("m1")])
    await deliver_due(db_pool, sender, TEMPLATES, SETTINGS, Recorder())
    assert await suppression.suppression_of(db_pool, "ana@example.com") is not None


async def test_giving_up_after_max_attempts_is_dead_lettered(db_pool, smtp, sender):
    clock, letters = Clock(), Recorder()
    smtp.data_replies.extend(["451 4.3.0 later"] * 2)
    await outbox.insert_sends(db_pool, [send("m1")], now=clock())
    for _ in range(2):
        await deliver_due(db_pool, sender, TEMPLATES, SETTINGS, Recorder(), clock,
                          max_attempts=2, publish_dead_letter=letters)
        clock.now += 3600
    [letter] = letters
    assert (letter.code, letter.attempts) == (451, 2) and "gave up" in letter.reason
    assert await suppression.suppression_of(db_pool, "ana@example.com") is None


async def test_an_unsubscribed_topic_stops_those_sends_only(db_pool, smtp, sender):
    await preferences.set_preferences(db_pool, "ana", {"newsletter": False})
    await outbox.insert_sends(db_pool, [send("n1", "news"), send("w1")])
    await deliver_due(db_pool, sender, TEMPLATES, SETTINGS, Recorder())
    assert [m.message["Subject"] for m in smtp.received] == ["Welcome"]
    status = await status_of(db_pool, "n1")
    assert status.row.status == "failed" and status.events[-1].status == "unsubscribed"
    assert "newsletter" in status.row.last_error
    # Transactional messages ignore topic preferences.
    await outbox.insert_sends(db_pool, [send("t1", "news", transactional=True)])
    await deliver_due(db_pool, sender, TEMPLATES, SETTINGS, Recorder())
    assert len(smtp.received) == 2


async def test_campaign_topic_counts_when_the_template_has_none(db_pool, smtp, sender):
    await preferences.set_preferences(db_pool, "ana", {"promos": False})
    cmd = send("w1").model_copy(update={"context": RenderContext(campaign={"topic": "promos"})})
    await outbox.insert_sends(db_pool, [cmd])
    await deliver_due(db_pool, sender, TEMPLATES, SETTINGS, Recorder())
    assert smtp.received == []


async def test_frequency_limit_defers_then_sends_and_exempts_transactional(db_pool, smtp, sender):
    clock = Clock()
    settings = SETTINGS.model_copy(update={"max_marketing_per_day": 1})
    await outbox.insert_sends(db_pool, [send("m1")], now=clock())
    await deliver_due(db_pool, sender, TEMPLATES, settings, Recorder(), clock)
    clock.now += 60
    await outbox.insert_sends(
        db_pool, [send("m2"), send("t1", transactional=True), send("x1", person="bob")],
        now=clock(),
    )
    await deliver_due(db_pool, sender, TEMPLATES, settings, Recorder(), clock)
    assert sorted(m.message["Message-ID"] for m in smtp.received) == [
        "<m1@nudge.test>", "<t1@nudge.test>", "<x1@nudge.test>"
    ]
    m2 = await status_of(db_pool, "m2")
    assert (m2.row.status, m2.row.attempts) == ("queued", 0)
    assert m2.events[-1].status == "deferred"
    # Due again one day after m1 went, not before.
    assert m2.row.next_attempt_at == pytest.approx(clock.now - 60 + 86_400, abs=1)
    clock.now += 86_400 - 120
    assert await deliver_due(db_pool, sender, TEMPLATES, settings, Recorder(), clock) == 0
    clock.now += 120
    await deliver_due(db_pool, sender, TEMPLATES, settings, Recorder(), clock)
    assert (await status_of(db_pool, "m2")).row.status == "sent"


async def test_frequency_limit_drop_policy(db_pool, smtp, sender):
    settings = SETTINGS.model_copy(update={"max_marketing_per_week": 1})
    await outbox.insert_sends(db_pool, [send("m1")])
    await deliver_due(db_pool, sender, TEMPLATES, settings, Recorder())
    await outbox.insert_sends(db_pool, [send("m2", limit_policy="drop")])
    outcomes = Recorder()
    await deliver_due(db_pool, sender, TEMPLATES, settings, outcomes)
    m2 = await status_of(db_pool, "m2")
    assert m2.row.status == "failed" and m2.events[-1].status == "dropped"
    assert [o.status for o in outcomes] == ["failed"]


async def test_two_loops_racing_for_one_person_send_only_the_limit(db_pool, smtp):
    settings = SETTINGS.model_copy(update={"max_marketing_per_day": 2})
    await outbox.insert_sends(db_pool, [send(f"m{i}") for i in range(8)])
    pool = SmtpPool(SmtpRelay(host=smtp.host, port=smtp.port), size=4)
    try:
        await asyncio.gather(*(
            deliver_due(db_pool, pool, TEMPLATES, settings, Recorder(), limit=2, concurrency=2,
                        name=f"race/{i}")
            for i in range(4)
        ))
    finally:
        await pool.close()
    assert len(smtp.received) == 2


async def test_sent_html_has_tracked_links_and_an_open_pixel(db_pool, smtp, sender):
    await outbox.insert_sends(db_pool, [send("m1")])
    await deliver_due(db_pool, sender, TEMPLATES, SETTINGS, Recorder())
    html = smtp.received[0].message.get_body(("html",)).get_content()
    assert "https://shop.test/p?id=1'" not in html
    click = html.split('href="', 1)[1].split('"', 1)[0].replace("&amp;", "&")
    parts = urlsplit(click)
    assert parts.netloc == "nudge.test" and parts.path.startswith("/c/")
    [target] = parse_qs(parts.query)["u"]
    assert target == "https://shop.test/p?id=1"
    assert verify("k", parts.path[3:], "click", target).message_id == "m1"
    assert "http://nudge.test/o/" in html and ".gif" in html
    # Transactional messages carry no List-Unsubscribe.
    await outbox.insert_sends(db_pool, [send("t1", transactional=True)])
    await deliver_due(db_pool, sender, TEMPLATES, SETTINGS, Recorder())
    assert smtp.received[1].message["List-Unsubscribe"] is None


async def test_pool_reuses_its_connections(db_pool, smtp):
    connections: list[object] = []
    original = smtp.handle_DATA

    async def handle_DATA(server, session, envelope):
        connections.append(session.peer)
        return await original(server, session, envelope)

    smtp.handle_DATA = handle_DATA
    await outbox.insert_sends(db_pool, [send(f"m{i}", person=f"p{i}") for i in range(20)])
    pool = SmtpPool(SmtpRelay(host=smtp.host, port=smtp.port), size=3)
    try:
        await deliver_due(db_pool, pool, TEMPLATES, SETTINGS, Recorder(), concurrency=3)
        assert pool.open_connections == 3
    finally:
        await pool.close()
    assert len(smtp.received) == 20
    assert len(set(connections)) == 3


async def test_pool_rate_limit_spaces_sends(db_pool, smtp):
    slow = SmtpPool(SmtpRelay(host=smtp.host, port=smtp.port), size=2, rate_per_second=5)
    await outbox.insert_sends(db_pool, [send(f"s{i}", person=f"q{i}") for i in range(10)])
    started = time.monotonic()
    try:
        await deliver_due(db_pool, slow, TEMPLATES, SETTINGS, Recorder(), concurrency=2)
    finally:
        await slow.close()
    assert len(smtp.received) == 10
    # A burst of 5 (one second's worth), then 5 more at 5/s: about one second in all.
    assert 0.8 <= time.monotonic() - started < 3


async def test_cancel_mid_batch_loses_no_claim_and_sends_nothing_twice(db_pool, smtp):
    smtp.data_delay = 0.05
    count = 40
    await outbox.insert_sends(db_pool, [send(f"m{i}", person=f"p{i}") for i in range(count)])
    pool = SmtpPool(SmtpRelay(host=smtp.host, port=smtp.port), size=2)
    loop = DeliveryLoop(db_pool, pool, TEMPLATES, SETTINGS, Recorder(), limit=count,
                        concurrency=2, idle_seconds=0.1)
    task = asyncio.create_task(loop.run())
    while len(smtp.received) < 5:  # noqa: ASYNC110 - polls a plain list the SMTP sink appends to
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # Right after the stop: nothing is left claimed, and every sent row reached the relay once.
    counts = dict(await db_pool.fetch("SELECT status, count(*) FROM outbox GROUP BY status"))
    assert "sending" not in counts
    assert counts["sent"] == len(smtp.received) < count
    released = await db_pool.fetchval(
        "SELECT count(DISTINCT message_id) FROM message_events WHERE status = 'released'"
    )
    assert released == count - counts["sent"]

    # Restart: the rest goes, and the relay has each message exactly once.
    task = asyncio.create_task(DeliveryLoop(
        db_pool, pool, TEMPLATES, SETTINGS, Recorder(), limit=count, concurrency=2,
        idle_seconds=0.1).run())
    for _ in range(300):
        if await db_pool.fetchval("SELECT count(*) FROM outbox WHERE status = 'sent'") == count:
            break
        await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await pool.close()
    ids = [m.message["Message-ID"] for m in smtp.received]
    assert len(ids) == count == len(set(ids))
    assert await db_pool.fetchval("SELECT max(attempts) FROM outbox") == 1


@pytest.mark.parametrize("address", [
    "two@x.test, attacker@evil.test",
    '"Ana" <attacker@evil.test>',
    "group: a@x.test, b@evil.test;",
    "ana@example.com\r\nBcc: victim@evil.test",
    "no-at-sign",
])
async def test_a_recipient_that_is_not_one_address_fails_at_send_time_with_the_reason(
    db_pool, smtp, sender, address
):
    outcomes = Recorder()
    await outbox.insert_sends(db_pool, [send("m1", to=address)])
    await deliver_due(db_pool, sender, TEMPLATES, SETTINGS, outcomes)
    assert smtp.received == []
    status = await status_of(db_pool, "m1")
    assert status.row.status == "failed" and status.events[-1].status == "invalid_recipient"
    assert status.row.last_error.startswith("invalid recipient")
    assert [o.status for o in outcomes] == ["failed"]


@pytest.mark.parametrize("suppressed, sent_to", [
    ("ana@example.com", "Ana@EXAMPLE.com"),
    ("ANA@Example.COM", "ana@example.com"),
    ("ana@bücher.example", "ana@xn--bcher-kva.example"),
    ("ana@xn--bcher-kva.example", "Ana@BÜCHER.example"),
])
async def test_suppression_matches_every_spelling_of_the_address(db_pool, smtp, sender, suppressed, sent_to):
    await suppression.suppress(db_pool, suppressed, "manual")
    await outbox.insert_sends(db_pool, [send("m1", to=sent_to)])
    await deliver_due(db_pool, sender, TEMPLATES, SETTINGS, Recorder())
    assert smtp.received == []
    assert (await status_of(db_pool, "m1")).events[-1].status == "suppressed"


async def test_a_person_suppressed_or_unsubscribed_after_the_decision_is_stopped_at_send(db_pool, smtp, sender):
    await db_pool.execute("TRUNCATE people")
    await db_pool.execute(
        "INSERT INTO people (person, email, suppressed, unsubscribed, updated_at) VALUES"
        " ('sue', 'sue@x.test', true, false, now()), ('uma', 'uma@x.test', false, true, now())"
    )
    await outbox.insert_sends(db_pool, [
        send("s1", to="sue@x.test", person="sue"), send("u1", to="uma@x.test", person="uma"),
        send("u2", to="uma@x.test", person="uma", transactional=True),
    ])
    await deliver_due(db_pool, sender, TEMPLATES, SETTINGS, Recorder())
    assert [m.message["Message-ID"] for m in smtp.received] == ["<u2@nudge.test>"]
    assert (await status_of(db_pool, "s1")).events[-1].status == "suppressed"
    assert (await status_of(db_pool, "u1")).events[-1].status == "unsubscribed"


async def test_the_envelope_and_to_header_carry_the_ascii_form_of_the_address(db_pool, smtp, sender):
    await outbox.insert_sends(db_pool, [send("m1", to="ana@bücher.example")])
    await deliver_due(db_pool, sender, TEMPLATES, SETTINGS, Recorder())
    [mail] = smtp.received
    assert mail.rcpt_tos == ["ana@xn--bcher-kva.example"]
    assert mail.message["To"].addresses[0].addr_spec == "ana@xn--bcher-kva.example"
