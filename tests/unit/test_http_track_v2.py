"""Track API v2: person operations become the v1 inputs; what Nudge does not model is refused, saying why."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from schemas.inputs import Delete, Devices, Identify, MergeInto, Suppress, Track, Unsubscribe
from streams.http.errors import ApiError
from streams.http.server import operations_app
from streams.http.track_v2 import batch_operations, operation_inputs, parse_operation, track_v2_operations
from streams.settings import Settings

NOW = 1_700_000_000.0
AUTH = {"Authorization": "Basic " + base64.b64encode(b"site:key").decode()}


def person(action: str, **fields: Any) -> dict[str, Any]:
    return {"type": "person", "identifiers": {"id": "ana"}, "action": action, **fields}


def inputs_of(operation: dict[str, Any]) -> list[Any]:
    return operation_inputs(parse_operation(operation), NOW)


def test_identify_sets_the_attributes_and_unsubscribed_moves_the_subscription():
    assert inputs_of(person("identify", attributes={"email": "ana@example.com", "unsubscribed": True})) == [
        Identify(person="ana", at=NOW, attributes={"email": "ana@example.com", "unsubscribed": True}),
        Unsubscribe(person="ana", at=NOW, unsubscribed=True),
    ]


@pytest.mark.parametrize("action", ["event", "page", "screen"])
def test_events_pages_and_screens_are_tracks_with_their_data(action):
    [item] = inputs_of(person(action, name="signed_up", id="e1", timestamp=1_600_000_000, attributes={"plan": "pro"}))
    assert item == Track(person="ana", at=1_600_000_000.0, name="signed_up", type=action, event_id="e1",
                         data={"plan": "pro"})


def test_devices_suppression_deletion_and_merges():
    assert inputs_of(person("add_device", device={"token": "t1", "platform": "ios"})) == [
        Devices(person="ana", at=NOW, action="add", device_id="t1", platform="ios")]
    assert inputs_of(person("delete_device", device={"token": "t1"})) == [
        Devices(person="ana", at=NOW, action="remove", device_id="t1")]
    assert inputs_of(person("suppress")) == [Suppress(person="ana", at=NOW, suppressed=True)]
    assert inputs_of(person("unsuppress")) == [Suppress(person="ana", at=NOW, suppressed=False)]
    assert inputs_of(person("delete")) == [Delete(person="ana", at=NOW)]
    merge = {"type": "person", "action": "merge", "primary": {"id": "ana"}, "secondary": {"id": "dup"}}
    assert inputs_of(merge) == [MergeInto(person="dup", at=NOW, into="ana")]


@pytest.mark.parametrize(
    ("operation", "reason"),
    [
        ({"type": "object", "identifiers": {"object_type_id": "1", "object_id": "acme"}, "action": "identify"},
         "Nudge models people only"),
        ({"type": "delivery", "identifiers": {"id": "d1"}, "action": "opened"}, "recorded by Nudge itself"),
        (person("add_relationships", cio_relationships=[{"identifiers": {"object_id": "acme"}}]), "relationships"),
        (person("identify", cio_relationships=[{"identifiers": {"object_id": "acme"}}]), "relationships"),
        ({"type": "person", "identifiers": {"email": "a@x.test"}, "action": "identify"}, "by `id` only"),
        (person("identify", attributes={"email": "a@x.test, b@evil.test"}), "`attributes.email` must be one email"),
        (person("fly"), "`action` must be one of"),
        (person("event"), "`name` is required"),
        (person("add_device", device={"token": "t"}), "`device.platform` is required"),
        ({"action": "identify"}, "`type` must be person"),
    ],
)
def test_what_nudge_does_not_model_is_refused_saying_why(operation, reason):
    with pytest.raises(ApiError, match=reason) as caught:
        parse_operation(operation)
    assert caught.value.status == 400


def test_a_batch_is_all_or_nothing_and_lists_every_refused_operation_by_index():
    body = {"batch": [person("event", name="ok"), person("event"), {"type": "object", "action": "identify"}]}
    with pytest.raises(ApiError) as caught:
        batch_operations(body)
    assert [(d["batch_index"], d["field"]) for d in caught.value.details] == [(1, "batch[1].name"), (2, "batch[2].type")]
    assert "nothing in the batch was stored" in caught.value.message


async def test_refusals_answer_in_customer_ios_v2_shape():
    settings = Settings(site_id="site", api_key="key")
    published: list[Any] = []

    async def publish(inputs: list[Any]) -> None:
        published.extend(inputs)

    app = operations_app(track_v2_operations(publish, "site", "key"), settings)
    async with TestClient(TestServer(app)) as client:
        response = await client.post("/api/v2/batch", json={"batch": [person("event")]}, headers=AUTH)
        body = await response.json()
        assert response.status == 400
        assert body["errors"] == [{"batch_index": 0, "reason": "invalid", "field": "batch[0].name",
                                   "message": "`batch[0].name` is required"}]
        assert "meta" in body and published == []
        response = await client.post("/api/v2/entity", json=person("event", name="signed_up"), headers=AUTH)
        assert (response.status, await response.json()) == (200, {})
        assert [i.name for i in published] == ["signed_up"]
        too_big = person("event", name="e", attributes={"x": "y" * 40_000})
        assert (await client.post("/api/v2/entity", json=too_big, headers=AUTH)).status == 413
