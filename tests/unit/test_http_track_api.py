"""The Track API's routes, served by the real aiohttp app, publish the right inputs."""

from __future__ import annotations

import base64

import pytest
from aiohttp.test_utils import TestClient, TestServer
from yarl import URL

from schemas.inputs import Delete, Devices, Identify, Input, MergeInto, Suppress, Track
from streams.http.server import create_app
from streams.settings import Settings

AUTH = {"Authorization": "Basic " + base64.b64encode(b"site:key").decode()}


class Recorder:
    """A publisher that keeps what it was given."""

    def __init__(self) -> None:
        self.inputs: list[Input] = []

    async def publish(self, inputs: list[Input]) -> None:
        self.inputs.extend(inputs)


@pytest.fixture
def published() -> Recorder:
    return Recorder()


@pytest.fixture
async def client(published: Recorder):
    settings = Settings(site_id="site", api_key="key", rate_limit_per_second=0)
    async with TestClient(TestServer(create_app(settings, published))) as test_client:
        yield test_client


async def test_identify_publishes_an_identify(client, published):
    response = await client.put("/api/v1/customers/ana", json={"email": "a@example.com"}, headers=AUTH)
    assert (response.status, await response.json()) == (200, {})
    [item] = published.inputs
    assert isinstance(item, Identify) and (item.person, item.attributes) == ("ana", {"email": "a@example.com"})


async def test_a_percent_encoded_slash_is_part_of_the_customer_id(client, published):
    response = await client.put(URL("/api/v1/customers/a%2Fb", encoded=True), json={}, headers=AUTH)
    assert response.status == 200
    assert published.inputs[0].person == "a/b"


async def test_a_percent_encoded_id_addresses_its_decoded_person_on_every_route(client, published):
    response = await client.post(URL("/api/v1/customers/ana%40example.com%2Fx/events", encoded=True), json={"name": "e"}, headers=AUTH)
    assert response.status == 200
    assert published.inputs[0].person == "ana@example.com/x"


async def test_track_publishes_a_track(client, published):
    body = {"name": "purchased", "data": {"amount": 5}, "timestamp": 1700000000, "id": "ev-1", "type": "event"}
    response = await client.post("/api/v1/customers/ana/events", json=body, headers=AUTH)
    assert response.status == 200
    assert published.inputs == [
        Track(person="ana", at=1700000000.0, name="purchased", data={"amount": 5}, event_id="ev-1")
    ]


async def test_an_anonymous_event_goes_to_the_anonymous_person(client, published):
    response = await client.post("/api/v1/events", json={"name": "viewed", "anonymous_id": "c-1"}, headers=AUTH)
    assert response.status == 200
    assert published.inputs[0].person == "anon:c-1"


async def test_delete_publishes_a_delete(client, published):
    response = await client.delete("/api/v1/customers/ana", headers=AUTH)
    assert (response.status, await response.json()) == (200, {})
    assert isinstance(published.inputs[0], Delete) and published.inputs[0].person == "ana"


async def test_adding_a_device_publishes_devices_add(client, published):
    response = await client.put("/api/v1/customers/ana/devices", json={"device": {"id": "tok", "platform": "android"}}, headers=AUTH)
    assert response.status == 200
    [item] = published.inputs
    assert isinstance(item, Devices) and (item.action, item.device_id, item.platform) == ("add", "tok", "android")


async def test_removing_a_device_publishes_devices_remove_with_the_decoded_id(client, published):
    response = await client.delete(URL("/api/v1/customers/ana/devices/tok%3A1%2F2", encoded=True), headers=AUTH)
    assert response.status == 200
    [item] = published.inputs
    assert isinstance(item, Devices) and (item.action, item.device_id) == ("remove", "tok:1/2")


@pytest.mark.parametrize(("path", "suppressed"), [("suppress", True), ("unsuppress", False)])
async def test_suppress_and_unsuppress_publish_a_suppress(client, published, path, suppressed):
    response = await client.post(f"/api/v1/customers/ana/{path}", headers=AUTH)
    assert response.status == 200
    assert published.inputs == [Suppress(person="ana", at=published.inputs[0].at, suppressed=suppressed)]


async def test_merge_customers_publishes_a_merge_into_on_the_secondary(client, published):
    body = {"primary": {"id": "ana"}, "secondary": {"id": "ana-old"}}
    response = await client.post("/api/v1/merge_customers", json=body, headers=AUTH)
    assert response.status == 200
    [item] = published.inputs
    assert isinstance(item, MergeInto) and (item.person, item.into) == ("ana-old", "ana")


async def test_without_credentials_it_is_401_in_customer_io_shape(client, published):
    response = await client.put("/api/v1/customers/ana", json={})
    assert response.status == 401
    assert "error" in (await response.json())["meta"]
    assert published.inputs == []


async def test_an_unknown_route_is_404_in_customer_io_shape(client):
    response = await client.get("/api/v1/nothing", headers=AUTH)
    assert response.status == 404
    assert (await response.json())["meta"]["error"]


async def test_invalid_json_is_400(client, published):
    response = await client.put("/api/v1/customers/ana", data=b"{nope", headers=AUTH)
    assert response.status == 400
    assert "not valid JSON" in (await response.json())["meta"]["error"]


async def test_a_body_over_the_limit_is_413(client, published):
    response = await client.post("/api/v1/customers/ana/events", data=b"x" * (300 * 1024), headers=AUTH)
    assert response.status == 413
    assert "larger than" in (await response.json())["meta"]["error"]


async def test_a_customer_id_over_150_bytes_is_400(client):
    response = await client.put("/api/v1/customers/" + "x" * 151, json={}, headers=AUTH)
    assert response.status == 400
    assert "longer than 150 bytes" in (await response.json())["meta"]["error"]


async def test_too_many_requests_are_429_with_retry_after(published):
    settings = Settings(site_id="site", api_key="key", rate_limit_per_second=2)
    async with TestClient(TestServer(create_app(settings, published))) as limited:
        responses = [
            (await limited.post("/api/v1/customers/ana/suppress", headers=AUTH)) for _ in range(3)
        ]
        refused_body = await responses[2].json()
    assert [r.status for r in responses] == [200, 200, 429]
    assert responses[2].headers["Retry-After"] == "1"
    assert "rate limit" in refused_body["meta"]["error"]
