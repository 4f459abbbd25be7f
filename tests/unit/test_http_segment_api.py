"""Segment's HTTP API and the webhook destinations, served by the real aiohttp app."""

from __future__ import annotations

import base64
import gzip

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from schemas.inputs import Identify, Input, Track
from streams.http.auth import webhook_signature
from streams.http.server import create_app
from streams.settings import Settings

WRITE_KEY = "wk-123"
AUTH = {"Authorization": "Basic " + base64.b64encode(f"{WRITE_KEY}:".encode()).decode()}


class Recorder:
    def __init__(self) -> None:
        self.inputs: list[Input] = []

    async def publish(self, inputs: list[Input]) -> None:
        self.inputs.extend(inputs)


@pytest.fixture
def published() -> Recorder:
    return Recorder()


async def serve(published: Recorder, **overrides):
    settings = Settings(segment_write_key=WRITE_KEY, rate_limit_per_second=0, **overrides)
    return TestClient(TestServer(create_app(settings, published)))


@pytest.fixture
async def client(published):
    async with await serve(published) as test_client:
        yield test_client


@pytest.mark.parametrize(
    ("path", "body", "kind"),
    [
        ("/v1/identify", {"userId": "ana", "traits": {"a": 1}}, "identify"),
        ("/v1/track", {"userId": "ana", "event": "E"}, "track"),
        ("/v1/page", {"userId": "ana", "name": "Home"}, "track"),
        ("/v1/screen", {"userId": "ana", "name": "Home"}, "track"),
        ("/v1/group", {"userId": "ana", "groupId": "g"}, "identify"),
        ("/v1/alias", {"userId": "ana", "previousId": "old"}, "merge_into"),
    ],
)
async def test_each_single_call_answers_success_and_publishes(client, published, path, body, kind):
    response = await client.post(path, json=body, headers=AUTH)
    assert (response.status, await response.json()) == (200, {"success": True})
    assert [i.kind for i in published.inputs] == [kind]


@pytest.mark.parametrize("path", ["/v1/batch", "/v1/import"])
async def test_a_batch_publishes_every_message(client, published, path):
    body = {"batch": [{"type": "identify", "userId": "a"}, {"type": "track", "userId": "b", "event": "E"}]}
    response = await client.post(path, json=body, headers=AUTH)
    assert response.status == 200
    assert [(i.kind, i.person) for i in published.inputs] == [("identify", "a"), ("track", "b")]


async def test_the_write_key_may_come_in_the_body(client, published):
    response = await client.post("/v1/track", json={"writeKey": WRITE_KEY, "userId": "a", "event": "E"})
    assert response.status == 200


async def test_a_wrong_write_key_is_401_in_segment_shape(client, published):
    bad = {"Authorization": "Basic " + base64.b64encode(b"nope:").decode()}
    response = await client.post("/v1/track", json={"userId": "a", "event": "E"}, headers=bad)
    assert response.status == 401
    assert await response.json() == {"success": False, "error": "invalid write key"}
    assert published.inputs == []


async def test_no_write_key_is_401(client):
    response = await client.post("/v1/track", json={"userId": "a", "event": "E"})
    assert response.status == 401


async def test_a_gzip_body_is_accepted(client, published):
    raw = gzip.compress(orjson.dumps({"userId": "ana", "event": "Zipped"}))
    response = await client.post("/v1/track", data=raw, headers={**AUTH, "Content-Encoding": "gzip", "Content-Type": "application/json"})
    assert response.status == 200
    assert isinstance(published.inputs[0], Track) and published.inputs[0].name == "Zipped"


async def test_a_single_message_over_32kb_is_413(client, published):
    body = {"userId": "a", "event": "E", "properties": {"b": "x" * 33_000}}
    response = await client.post("/v1/track", json=body, headers=AUTH)
    assert response.status == 413
    assert "larger than 32768 bytes" in (await response.json())["error"]


async def test_a_gzip_body_that_expands_over_the_limit_is_413(client, published):
    raw = gzip.compress(orjson.dumps({"userId": "a", "event": "E", "properties": {"b": "x" * 600_000}}))
    response = await client.post("/v1/batch", data=raw, headers={**AUTH, "Content-Encoding": "gzip"})
    assert response.status == 413
    assert "larger than 512000 bytes" in (await response.json())["error"]


async def test_a_batch_over_500kb_is_413(client, published):
    message = {"type": "track", "userId": "a", "event": "E", "properties": {"b": "x" * 30_000}}
    response = await client.post("/v1/batch", json={"batch": [message] * 18}, headers=AUTH)
    assert response.status == 413


async def test_a_batch_with_one_bad_message_publishes_nothing(client, published):
    body = {"batch": [{"type": "track", "userId": "a", "event": "E"}, {"type": "track", "event": "E"}]}
    response = await client.post("/v1/batch", json=body, headers=AUTH)
    assert response.status == 400
    assert "batch[1]" in (await response.json())["error"]
    assert published.inputs == []


@pytest.mark.parametrize("source", ["segment", "rudderstack"])
async def test_a_signed_webhook_is_accepted(published, source):
    raw = orjson.dumps({"type": "identify", "userId": "ana", "traits": {"plan": "pro"}})
    async with await serve(published, webhook_secret="s3cret") as client:
        response = await client.post(f"/webhooks/{source}", data=raw, headers={"X-Signature": webhook_signature("s3cret", raw)})
        assert response.status == 200
    assert published.inputs == [Identify(person="ana", at=published.inputs[0].at, attributes={"plan": "pro"})]


@pytest.mark.parametrize("signature", [None, "0" * 40])
async def test_a_webhook_with_a_missing_or_wrong_signature_is_401(published, signature):
    raw = orjson.dumps({"type": "track", "userId": "ana", "event": "E"})
    headers = {"X-Signature": signature} if signature else {}
    async with await serve(published, webhook_secret="s3cret") as client:
        response = await client.post("/webhooks/segment", data=raw, headers=headers)
        assert response.status == 401
    assert published.inputs == []


async def test_without_a_secret_a_webhook_needs_the_write_key(client, published):
    body = {"type": "track", "userId": "ana", "event": "E"}
    assert (await client.post("/webhooks/rudderstack", json=body)).status == 401
    assert (await client.post("/webhooks/rudderstack", json=body, headers=AUTH)).status == 200


async def test_a_webhook_event_of_unknown_type_is_400(client):
    response = await client.post("/webhooks/segment", json={"type": "boom", "userId": "a"}, headers=AUTH)
    assert response.status == 400


async def test_a_body_not_in_its_declared_content_encoding_is_400(client, published):
    response = await client.post("/v1/track", data=b'{"userId": "a", "event": "E"}', headers={**AUTH, "Content-Encoding": "gzip"})
    assert response.status == 400
    assert "not valid gzip" in (await response.json())["error"]


async def test_a_deflate_body_is_accepted(client, published):
    import zlib

    raw = zlib.compress(orjson.dumps({"userId": "ana", "event": "Deflated"}))
    response = await client.post("/v1/track", data=raw, headers={**AUTH, "Content-Encoding": "deflate"})
    assert response.status == 200
    assert published.inputs[0].name == "Deflated"


async def test_an_unsupported_content_encoding_is_400(client, published):
    response = await client.post("/v1/track", data=b"{}", headers={**AUTH, "Content-Encoding": "br"})
    assert response.status == 400
    assert "unsupported Content-Encoding 'br'" in (await response.json())["error"]


async def test_the_transactional_path_under_v1_keeps_customer_io_errors(client):
    response = await client.get("/v1/send/email")
    assert response.status == 405
    assert "meta" in await response.json()
