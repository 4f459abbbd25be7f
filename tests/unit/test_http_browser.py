"""Browser ingestion: the public key, CORS allow-list and preflight, per-address rate limits, sizes."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from streams.http.server import api_operations, operations_app
from streams.settings import Settings

BROWSER_KEY = "browser-key-0123456789"
SERVER_KEY = "server-write-key-0123456789"
SHOP = "https://shop.example"


def basic(user: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:".encode()).decode()


class Recorder:
    def __init__(self) -> None:
        self.inputs: list[Any] = []

    async def publish(self, inputs: list[Any]) -> None:
        self.inputs.extend(inputs)


def settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = dict(
        browser_write_key=BROWSER_KEY, segment_write_key=SERVER_KEY, cors_origins=f"{SHOP},http://localhost:3000",
        rate_limit_per_second=0, browser_rate_limit_per_second=0, public_url="https://nudge.example",
    )
    return Settings(**{**values, **overrides})


@pytest.fixture
async def client():
    recorder = Recorder()
    chosen = settings()
    async with TestClient(TestServer(operations_app(api_operations(chosen, recorder), chosen))) as test_client:
        test_client.recorder = recorder  # type: ignore[attr-defined]
        yield test_client


def preflight(origin: str, method: str = "POST") -> dict[str, str]:
    return {"Origin": origin, "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "authorization,content-type"}


async def test_a_preflight_from_an_allowed_origin_is_answered(client):
    response = await client.options("/v1/t", headers=preflight(SHOP))
    assert response.status == 204
    assert response.headers["Access-Control-Allow-Origin"] == SHOP
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    assert response.headers["Access-Control-Allow-Headers"] == "authorization,content-type"


async def test_a_preflight_from_another_origin_is_refused(client):
    response = await client.options("/v1/t", headers=preflight("https://evil.example"))
    assert response.status == 403
    assert "Access-Control-Allow-Origin" not in response.headers


async def test_server_routes_answer_no_preflight(client):
    for path in ("/api/v1/customers/ana", "/api/v1/activity", "/v1/send/email"):
        response = await client.options(path, headers=preflight(SHOP, "PUT"))
        assert response.status == 405 and "Access-Control-Allow-Origin" not in response.headers


async def test_analytics_js_posts_text_plain_json_with_the_browser_key(client):
    body = f'{{"userId": "ana", "event": "Viewed", "writeKey": "{BROWSER_KEY}"}}'
    response = await client.post("/v1/t", data=body, headers={"Origin": SHOP, "Content-Type": "text/plain"})
    assert response.status == 200 and response.headers["Access-Control-Allow-Origin"] == SHOP
    assert [i.name for i in client.recorder.inputs] == ["Viewed"]


async def test_a_post_from_an_origin_outside_the_list_is_refused_before_it_is_stored(client):
    response = await client.post("/v1/track", json={"userId": "ana", "event": "E"},
                                 headers={"Origin": "https://evil.example", "Authorization": basic(BROWSER_KEY)})
    assert response.status == 403 and (await response.json())["success"] is False
    assert client.recorder.inputs == []


@pytest.mark.parametrize("path", ["/v1/alias", "/v1/a"])
async def test_the_browser_key_cannot_merge_people(client, path):
    response = await client.post(path, json={"previousId": "victim", "userId": "attacker"},
                                 headers={"Origin": SHOP, "Authorization": basic(BROWSER_KEY)})
    assert response.status == 403 and client.recorder.inputs == []


async def test_the_browser_key_cannot_alias_inside_a_batch(client):
    batch = {"batch": [{"type": "track", "userId": "a", "event": "e"},
                       {"type": "alias", "previousId": "victim", "userId": "a"}]}
    response = await client.post("/v1/b", json=batch, headers={"Origin": SHOP, "Authorization": basic(BROWSER_KEY)})
    assert response.status == 403 and client.recorder.inputs == []


async def test_the_server_key_may_alias(client):
    response = await client.post("/v1/alias", json={"previousId": "old", "userId": "new"},
                                 headers={"Authorization": basic(SERVER_KEY)})
    assert response.status == 200


async def test_a_message_over_32_kb_is_413(client):
    body = {"userId": "ana", "event": "E", "properties": {"x": "y" * 33_000}}
    response = await client.post("/v1/t", json=body, headers={"Origin": SHOP, "Authorization": basic(BROWSER_KEY)})
    assert response.status == 413


async def test_each_client_address_has_its_own_rate_limit():
    chosen = settings(browser_rate_limit_per_second=2)
    async with TestClient(TestServer(operations_app(api_operations(chosen, Recorder()), chosen))) as client:
        headers = {"Origin": SHOP, "Authorization": basic(BROWSER_KEY)}
        statuses = [(await client.post("/v1/t", json={"userId": "a", "event": "e"}, headers=headers)).status
                    for _ in range(4)]
        assert statuses[:2] == [200, 200] and statuses[2] == 429
        # The server key is not a browser: no per-address limit.
        server = {"Authorization": basic(SERVER_KEY)}
        assert (await client.post("/v1/track", json={"userId": "a", "event": "e"}, headers=server)).status == 200


async def test_analytics_js_settings_point_it_at_nudge_for_the_browser_key_only(client):
    response = await client.get(f"/v1/projects/{BROWSER_KEY}/settings", headers={"Origin": SHOP})
    settings_document = await response.json()
    assert response.status == 200 and response.headers["Access-Control-Allow-Origin"] == SHOP
    assert settings_document["integrations"]["Segment.io"] == {
        "apiKey": BROWSER_KEY, "apiHost": "nudge.example/v1", "protocol": "https"}
    assert (await client.get(f"/v1/projects/{SERVER_KEY}/settings")).status == 404


async def test_rudderstack_source_config_for_the_browser_key(client):
    response = await client.get(f"/sourceConfig/?writeKey={BROWSER_KEY}&p=npm")
    assert response.status == 200 and (await response.json())["source"]["writeKey"] == BROWSER_KEY
    assert (await client.get("/sourceConfig/?writeKey=nope")).status == 404


async def test_rudderstacks_beacon_carries_the_key_in_the_query(client):
    response = await client.post(f"/beacon/v1/batch?writeKey={BROWSER_KEY}",
                                 data='{"batch": [{"type": "page", "anonymousId": "c1", "name": "Home"}]}',
                                 headers={"Origin": SHOP, "Content-Type": "text/plain"})
    assert response.status == 200 and client.recorder.inputs[0].person == "anon:c1"


async def test_without_a_browser_key_pages_get_nothing(tmp_path):
    chosen = settings(browser_write_key=None)
    async with TestClient(TestServer(operations_app(api_operations(chosen, Recorder()), chosen))) as client:
        response = await client.post("/v1/t", json={"userId": "a", "event": "e", "writeKey": BROWSER_KEY},
                                     headers={"Origin": SHOP})
        assert response.status == 401
