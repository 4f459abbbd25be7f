"""End to end on the real stack: a Track API event becomes a delivered email, exactly once."""

from __future__ import annotations

import asyncio
import time

import pytest

from deploy.local.runner import NudgeProcesses, text_of, wait_for
from streams.database import connect

pytestmark = pytest.mark.integration

WELCOME = """\
id: welcome
trigger: {event: signed_up}
steps:
  - send: welcome
"""
THANKS = """\
id: thanks
trigger: {event: purchased}
reentry: always
steps:
  - send: thanks
"""
WELCOME_TEMPLATE = """\
---
subject: "Welcome, {{ customer.first_name }}!"
---
<p>Your {{ event.plan }} account is ready.</p>
"""
THANKS_TEMPLATE = """\
---
subject: "Thanks for order {{ event.order_id }}"
---
<p>We got it.</p>
"""


PROJECT = {
    "campaigns/welcome.yaml": WELCOME,
    "campaigns/thanks.yaml": THANKS,
    "templates/welcome.html": WELCOME_TEMPLATE,
    "templates/thanks.html": THANKS_TEMPLATE,
}


@pytest.fixture
def nudge(start_nudge):
    return start_nudge(PROJECT)


def outbox_statuses(nudge: NudgeProcesses) -> list[tuple[str, str]]:
    async def query() -> list[tuple[str, str]]:
        conn = await connect(nudge.settings.database_url, nudge.settings.app_id)
        try:
            rows = await conn.fetch("SELECT template, status FROM outbox ORDER BY created_at")
            return [(r["template"], r["status"]) for r in rows]
        finally:
            await conn.close()

    return asyncio.run(query())


def test_identify_and_track_over_http_deliver_the_rendered_email(nudge, inbox):
    assert nudge.request("PUT", "/api/v1/customers/ana", {"email": "ana@example.com", "first_name": "Ana"}) == (200, {})
    assert nudge.request("POST", "/api/v1/customers/ana/events", {"name": "signed_up", "data": {"plan": "trial"}}) == (200, {})

    wait_for(lambda: inbox.received, 30, what="the welcome email")
    message = inbox.received[0]
    assert message.rcpt_tos == ["ana@example.com"]
    assert message.message["Subject"] == "Welcome, Ana!"
    assert "Your trial account is ready." in text_of(message.message)
    wait_for(lambda: outbox_statuses(nudge) == [("welcome", "sent")], 10, what="the outbox row to read sent")


def test_the_same_event_id_sent_twice_yields_one_email(nudge, inbox):
    nudge.request("PUT", "/api/v1/customers/bo", {"email": "bo@example.com"})
    event = {"name": "purchased", "id": "order-1-event", "data": {"order_id": "o-1"}}
    assert nudge.request("POST", "/api/v1/customers/bo/events", event)[0] == 200
    assert nudge.request("POST", "/api/v1/customers/bo/events", event)[0] == 200
    # A different id is a different purchase: it must get its own email, which also
    # tells us when the duplicate would have arrived had it not been dropped.
    second = {"name": "purchased", "id": "order-2-event", "data": {"order_id": "o-2"}}
    assert nudge.request("POST", "/api/v1/customers/bo/events", second)[0] == 200

    wait_for(lambda: len(inbox.received) >= 2, 30, what="two thank-you emails")
    time.sleep(2)
    subjects = sorted(m.message["Subject"] for m in inbox.received)
    assert subjects == ["Thanks for order o-1", "Thanks for order o-2"]


def test_a_worker_killed_after_the_event_was_accepted_sends_exactly_once(nudge, inbox):
    nudge.request("PUT", "/api/v1/customers/cy", {"email": "cy@example.com", "first_name": "Cy"})
    assert nudge.request("POST", "/api/v1/customers/cy/events", {"name": "signed_up", "data": {"plan": "pro"}})[0] == 200
    nudge.kill_worker()

    nudge.start_worker()
    wait_for(lambda: inbox.received, 60, what="the welcome email after the restart")
    time.sleep(3)
    assert [m.message["Subject"] for m in inbox.received] == ["Welcome, Cy!"]
    assert outbox_statuses(nudge) == [("welcome", "sent")]


def test_a_worker_killed_after_sending_does_not_send_again_on_restart(nudge, inbox):
    nudge.request("PUT", "/api/v1/customers/dee", {"email": "dee@example.com", "first_name": "Dee"})
    nudge.request("POST", "/api/v1/customers/dee/events", {"name": "signed_up", "data": {"plan": "pro"}})
    # Killed once the send is recorded: a kill inside the SMTP exchange may send twice (the
    # fault suite counts those), one after it must not.
    wait_for(lambda: outbox_statuses(nudge) == [("welcome", "sent")], 30, what="the welcome sent")
    nudge.kill_worker()

    nudge.start_worker()
    # A later input for the same person proves the restarted worker has caught up.
    nudge.request("POST", "/api/v1/customers/dee/events", {"name": "purchased", "id": "p1", "data": {"order_id": "o-9"}})
    wait_for(lambda: len(inbox.received) >= 2, 60, what="the thank-you email after the restart")
    time.sleep(2)
    assert sorted(m.message["Subject"] for m in inbox.received) == ["Thanks for order o-9", "Welcome, Dee!"]


def test_a_worker_with_an_empty_data_dir_restores_people_from_the_changelog(nudge, inbox, tmp_path):
    nudge.request("PUT", "/api/v1/customers/eve", {"email": "eve@example.com", "first_name": "Eve"})
    nudge.request("POST", "/api/v1/customers/eve/events", {"name": "signed_up", "data": {"plan": "pro"}})
    wait_for(lambda: outbox_statuses(nudge) == [("welcome", "sent")], 30, what="the welcome sent")
    nudge.kill_worker()

    # A replaced machine: the new worker has no local RocksDB state at all.
    nudge.env["NUDGE_DATA_DIR"] = str(tmp_path / "empty-data-dir")
    nudge.start_worker()
    # Welcome is once per person: a restored state knows eve already had it.
    nudge.request("POST", "/api/v1/customers/eve/events", {"name": "signed_up", "data": {"plan": "pro"}})
    nudge.request("POST", "/api/v1/customers/eve/events", {"name": "purchased", "id": "p1", "data": {"order_id": "o-7"}})
    wait_for(lambda: len(inbox.received) >= 2, 60, what="the thank-you email from the new worker")
    time.sleep(2)
    assert sorted(m.message["Subject"] for m in inbox.received) == ["Thanks for order o-7", "Welcome, Eve!"]
