"""Unsubscribe, preferences, open pixel, click redirect and the message API over real HTTP and
PostgreSQL (inputs are recorded by a publish callable instead of Kafka)."""

from __future__ import annotations

import base64
from urllib.parse import quote

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from agents.sender import outbox, preferences, suppression
from agents.sender.links import message_links
from schemas.commands import SendEmail
from schemas.inputs import Delivery, Unsubscribe
from streams.http.email_links import PIXEL_GIF, email_link_operations
from streams.http.server import create_app, operations_app
from streams.settings import Settings

pytestmark = pytest.mark.integration

SETTINGS = Settings(public_url="http://nudge.test", secret_key="k", site_id="site", api_key="key",
                    read_api_key="read-key-0123", send_api_key="send-key-0123")
READ = {"Authorization": "Bearer read-key-0123"}
SEND = {"Authorization": "Bearer send-key-0123"}
TRACK = {"Authorization": "Basic " + base64.b64encode(b"site:key").decode()}


class Published(list):
    async def __call__(self, inputs) -> None:
        self.extend(inputs)


@pytest.fixture
async def client(db_pool: asyncpg.Pool):
    await db_pool.execute("TRUNCATE suppressions, subscription_preferences")
    published = Published()

    async def pool() -> asyncpg.Pool:
        return db_pool

    app = operations_app(email_link_operations(SETTINGS, published, pool_factory=pool,
                                               topics=lambda: ["newsletter", "product"]), SETTINGS)
    async with TestClient(TestServer(app)) as http:
        http.published = published  # type: ignore[attr-defined]
        yield http


def links(message_id: str = "m1", person: str = "ana"):
    return message_links(SETTINGS.public_url, SETTINGS.secret_key, message_id, person)


def path(url: str) -> str:
    return url.removeprefix("http://nudge.test")


async def test_unsubscribe_get_only_confirms_post_unsubscribes(client, db_pool):
    url = path(links().unsubscribe)
    page = await client.get(url)
    assert page.status == 200 and "<form method='post'" in await page.text()
    assert client.published == []

    # RFC 8058 one-click: a POST with List-Unsubscribe=One-Click.
    done = await client.post(url, data="List-Unsubscribe=One-Click",
                             headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert done.status == 200
    [published] = client.published
    assert isinstance(published, Unsubscribe)
    assert (published.person, published.message_id, published.unsubscribed) == ("ana", "m1", True)
    events = await db_pool.fetch("SELECT status FROM message_events WHERE message_id = 'm1'")
    assert [e["status"] for e in events] == ["unsubscribed"]


@pytest.mark.parametrize("method", ["get", "post"])
async def test_a_tampered_unsubscribe_link_is_403(client, method):
    url = path(links().unsubscribe)
    response = await getattr(client, method)(url[:-2] + ("AA" if not url.endswith("AA") else "BB"))
    assert response.status == 403
    assert client.published == []


async def test_preferences_page_lists_topics_and_saves_choices(client, db_pool):
    url = path(links().preferences)
    page = await (await client.get(url)).text()
    assert "newsletter" in page and "product" in page and page.count(" checked") == 2
    saved = await client.post(url, data={"topic:product": "on"})
    assert saved.status == 200
    assert await preferences.preferences_of(db_pool, "ana") == {"newsletter": False, "product": True}
    assert not await preferences.is_subscribed(db_pool, "ana", "newsletter")
    assert client.published == []
    await client.post(url, data={"unsubscribe_all": "on"})
    assert [type(i).__name__ for i in client.published] == ["Unsubscribe"]


async def test_a_preferences_token_cannot_be_used_for_another_person(client):
    mine = links(person="ana").preferences.rsplit("/", 1)[1]
    bob = links(person="bob").preferences.rsplit("/", 1)[1]
    forged = bob.split(".")[0] + "." + mine.split(".")[1]
    assert (await client.get(f"/preferences/{forged}")).status == 403


async def test_open_pixel_is_a_gif_and_records_the_open(client, db_pool):
    response = await client.get(path(links().open_pixel))
    assert response.status == 200 and response.content_type == "image/gif"
    assert await response.read() == PIXEL_GIF
    [opened] = client.published
    assert isinstance(opened, Delivery) and (opened.status, opened.person) == ("opened", "ana")
    assert await db_pool.fetchval(
        "SELECT count(*) FROM message_events WHERE message_id='m1' AND status='opened'") == 1


async def test_a_bad_pixel_still_answers_a_gif_but_records_nothing(client):
    response = await client.get("/o/garbage.gif")
    assert response.status == 200 and client.published == []


async def test_click_redirects_and_records_the_url(client, db_pool):
    target = "https://shop.test/p?id=1&x=y"
    response = await client.get(path(links().click(target)), allow_redirects=False)
    assert response.status == 302 and response.headers["Location"] == target
    [clicked] = client.published
    assert (clicked.status, clicked.url, clicked.message_id) == ("clicked", target, "m1")
    detail = await db_pool.fetchval(
        "SELECT detail FROM message_events WHERE message_id='m1' AND status='clicked'")
    assert detail == target


async def test_a_click_link_cannot_become_an_open_redirect(client):
    good = path(links().click("https://shop.test/"))
    evil = good.split("?u=")[0] + "?u=" + quote("https://evil.test/", safe="")
    response = await client.get(evil, allow_redirects=False)
    assert response.status == 403 and "Location" not in response.headers
    assert (await client.get(good.split("?")[0], allow_redirects=False)).status == 403
    assert client.published == []


async def test_message_api_shows_status_and_timeline_behind_the_read_key(client, db_pool):
    command = SendEmail(message_id="m9", person="ana", to="ana@example.com", template="welcome",
                        decided_at=1.0)
    await outbox.insert_sends(db_pool, [command])
    await client.get(path(links("m9").open_pixel))
    assert (await client.get("/api/v1/messages/m9")).status == 401
    assert (await client.get("/api/v1/messages/m9", headers=TRACK)).status == 401
    assert (await client.get("/api/v1/messages/m9", headers=SEND)).status == 401
    response = await client.get("/api/v1/messages/m9", headers=READ)
    body = await response.json()
    assert (body["status"], body["opened"], body["clicked"]) == ("queued", True, False)
    assert [e["status"] for e in body["timeline"]] == ["queued", "opened"]
    assert (await client.get("/api/v1/messages/nope", headers=READ)).status == 404


async def test_suppression_api_adds_lists_and_removes(client, db_pool):
    assert (await client.put("/api/v1/suppressions/Bob@x.test")).status == 401
    assert (await client.put("/api/v1/suppressions/Bob@x.test", headers=READ)).status == 401
    added = await client.put("/api/v1/suppressions/Bob@x.test", json={"reason": "complaint"},
                             headers=SEND)
    assert (await added.json()) == {"address": "bob@x.test", "added": True}
    listed = await (await client.get("/api/v1/suppressions", headers=READ)).json()
    assert [(s["address"], s["reason"]) for s in listed["suppressions"]] == [("bob@x.test", "complaint")]
    assert (await client.delete("/api/v1/suppressions/bob@x.test", headers=SEND)).status == 200
    assert await suppression.suppression_of(db_pool, "bob@x.test") is None
    assert (await client.delete("/api/v1/suppressions/bob@x.test", headers=SEND)).status == 404


@pytest.mark.parametrize("address", ["a@x.test,b@x.test", "nobody", "a%00b@x.test"])
async def test_suppressing_anything_but_one_address_is_a_400(client, address):
    response = await client.put(f"/api/v1/suppressions/{address}", json={}, headers=SEND)
    assert response.status == 400


@pytest.mark.parametrize("raw", [r'{"reason": "a\u0000b"}', r'{"reason": "\ud800"}', '{"reason": {}}', '{"detail": [1]}'])
async def test_an_unstorable_or_mistyped_suppression_reason_is_a_400(client, raw):
    response = await client.put("/api/v1/suppressions/ok@x.test", data=raw,
                                headers={**SEND, "Content-Type": "application/json"})
    assert response.status == 400, await response.text()


def test_create_app_serves_the_email_links_and_transactional_api():
    class Publisher:
        async def publish(self, inputs) -> None:
            pass

    app = create_app(SETTINGS, Publisher())
    paths = {r.resource.canonical for r in app.router.routes() if r.resource is not None}
    assert {"/unsubscribe/{token}", "/c/{token}", "/v1/send/email",
            "/api/v1/messages/{message_id}"} <= paths
