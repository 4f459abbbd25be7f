"""POST /v1/send/email: queue a transactional email in the outbox and deliver it."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from agents.sender import outbox
from agents.sender.delivery import DeliveryLoop
from agents.sender.smtp import SmtpSender
from schemas.templates import EmailTemplate
from streams.http.server import operations_app
from streams.http.transactional_api import transactional_operations
from streams.settings import Settings, SmtpRelay

pytestmark = pytest.mark.integration

SETTINGS = Settings(public_url="http://nudge.test", secret_key="k", site_id="site",
                    api_key="key", send_api_key="send-key-0123", read_api_key="read-key-0123",
                    mail_from="Shop <shop@nudge.test>")
BEARER = {"Authorization": "Bearer send-key-0123"}
TEMPLATES = {
    "receipt": EmailTemplate(
        id="receipt", subject="Receipt {{ event.order_id }}",
        body="<p>Hi {{ customer.first_name | default('there') }}, total "
             "{{ event.total | money }}</p>",
        topic="newsletter",
    )
}


async def deliver_due(pool, sender, templates, settings, outcomes) -> int:
    """One round of a delivery loop on the API's clock: claim a batch, deliver it, record it."""
    return await DeliveryLoop(pool, sender, templates, settings, outcomes, now_fn=lambda: NOW + 1).round()


NOW = 1_700_000_000.0


class Recorder(list):
    async def __call__(self, item) -> None:
        self.append(item)


@pytest.fixture
async def client(db_pool: asyncpg.Pool):
    await db_pool.execute("TRUNCATE suppressions, subscription_preferences")

    async def pool() -> asyncpg.Pool:
        return db_pool

    app = operations_app(transactional_operations(SETTINGS, pool_factory=pool, templates=lambda: TEMPLATES,
                                                  clock=lambda: NOW), SETTINGS)
    async with TestClient(TestServer(app)) as http:
        yield http


@pytest.fixture
async def sender(smtp_server: Callable):
    smtp = smtp_server()
    sender = SmtpSender(SmtpRelay(host=smtp.host, port=smtp.port), timeout=5)
    sender.smtp = smtp  # type: ignore[attr-defined]
    yield sender
    await sender.close()


async def test_send_a_template_to_an_address_now(client, db_pool, sender):
    response = await client.post("/v1/send/email", headers=BEARER, json={
        "transactional_message_id": "receipt", "to": "ana@example.com",
        "identifiers": {"id": "ana"}, "message_data": {"order_id": "A1", "total": 12.5},
    })
    assert response.status == 200
    body = await response.json()
    assert body["delivery_id"].startswith("tx-") and body["queued_at"] == 1_700_000_000
    await deliver_due(db_pool, sender, TEMPLATES, SETTINGS, Recorder())
    [mail] = sender.smtp.received
    assert mail.message["Subject"] == "Receipt A1"
    assert "Hi there, total $12.50" in mail.message.get_body(("html",)).get_content()
    assert mail.message["List-Unsubscribe"] is None
    status = await outbox.message_status(db_pool, body["delivery_id"])
    assert status is not None and status.row.command.transactional and status.row.status == "sent"


async def test_customer_attributes_and_address_come_from_the_people_projection(client, db_pool, sender):
    await db_pool.execute("DELETE FROM people WHERE person = 'bob'")
    await db_pool.execute(
        "INSERT INTO people (person, email, attributes, updated_at)"
        " VALUES ('bob', 'bob@example.com', $1::jsonb, now())",
        json.dumps({"first_name": "Bob"}),
    )
    response = await client.post("/v1/send/email", headers=BEARER, json={
        "transactional_message_id": "receipt", "identifiers": {"id": "bob"},
        "message_data": {"order_id": "B2", "total": 3},
    })
    assert response.status == 200, await response.text()
    await deliver_due(db_pool, sender, TEMPLATES, SETTINGS, Recorder())
    [mail] = sender.smtp.received
    assert mail.message["To"] == "bob@example.com"
    assert "Hi Bob, total $3.00" in mail.message.get_body(("html",)).get_content()


async def test_the_same_idempotency_key_queues_one_message(client, db_pool):
    request = {"transactional_message_id": "receipt", "to": "ana@example.com",
               "identifiers": {"id": "ana"}, "message_data": {"order_id": "A1", "total": 1}}
    headers = {**BEARER, "Idempotency-Key": "order-A1"}
    first = await (await client.post("/v1/send/email", headers=headers, json=request)).json()
    second = await (await client.post("/v1/send/email", headers=headers, json=request)).json()
    assert first["delivery_id"] == second["delivery_id"] and second["duplicate"] is True
    assert await db_pool.fetchval("SELECT count(*) FROM outbox WHERE message_id = $1",
                                  first["delivery_id"]) == 1


async def test_subject_and_body_overrides_without_a_template(client, db_pool, sender):
    response = await client.post("/v1/send/email", headers=BEARER, json={
        "to": "ana@example.com", "identifiers": {"email": "ana@example.com"},
        "subject": "Code {{ event.code }}", "body": "<p>Your code is {{ event.code }}</p>",
        "message_data": {"code": "123456"},
    })
    assert response.status == 200, await response.text()
    await deliver_due(db_pool, sender, TEMPLATES, SETTINGS, Recorder())
    [mail] = sender.smtp.received
    assert mail.message["Subject"] == "Code 123456"


async def test_transactional_sends_ignore_topic_unsubscribes(client, db_pool, sender):
    from agents.sender import preferences

    await preferences.set_preferences(db_pool, "ana", {"newsletter": False})
    await client.post("/v1/send/email", headers=BEARER, json={
        "transactional_message_id": "receipt", "to": "ana@example.com",
        "identifiers": {"id": "ana"}, "message_data": {"order_id": "A1", "total": 1}})
    await deliver_due(db_pool, sender, TEMPLATES, SETTINGS, Recorder())
    assert len(sender.smtp.received) == 1


@pytest.mark.parametrize(("body", "status", "needle"), [
    ({"to": "a@x.test", "identifiers": {"id": "a"}}, 400, "transactional_message_id"),
    ({"transactional_message_id": "nope", "to": "a@x.test", "identifiers": {"id": "a"}}, 404,
     "no template 'nope'"),
    ({"transactional_message_id": "receipt", "to": "a@x.test"}, 400, "`identifiers` is required"),
    ({"transactional_message_id": "receipt", "identifiers": {"id": "zed"}}, 400, "`to` is required"),
    ({"transactional_message_id": "receipt", "to": "a@x.test\r\nBcc: v@x.test",
      "identifiers": {"id": "a"}}, 400, "`to` must be one email address"),
    ({"transactional_message_id": "receipt", "to": "a@x.test, v@evil.test",
      "identifiers": {"id": "a"}}, 400, "`to` must be one email address"),
    ({"transactional_message_id": "receipt", "to": '"A" <a@x.test>',
      "identifiers": {"id": "a"}}, 400, "`to` must be one email address"),
    ({"transactional_message_id": "receipt", "to": "a@x.test", "subject": "Hi\nBcc: v@x.test",
      "identifiers": {"id": "a"}}, 400, "`subject` must be one line"),
    ({"transactional_message_id": "a\u0000b", "to": "a@x.test", "identifiers": {"id": "a"}}, 400,
     "NUL character"),
])
async def test_bad_requests_name_the_problem(client, body, status, needle):
    response = await client.post("/v1/send/email", headers=BEARER, json=body)
    assert response.status == status
    assert needle in (await response.json())["meta"]["error"]


async def test_the_send_key_is_required(client):
    assert (await client.post("/v1/send/email", json={})).status == 401
    for other in ("Bearer key", "Bearer read-key-0123",
                  "Basic " + base64.b64encode(b"site:key").decode()):
        assert (await client.post("/v1/send/email", headers={"Authorization": other}, json={})).status == 401
    basic = {"Authorization": "Basic " + base64.b64encode(b"site:send-key-0123").decode()}
    response = await client.post("/v1/send/email", headers=basic, json={})
    assert response.status == 400
