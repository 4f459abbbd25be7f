"""Strict events: `events.yaml` declares the events and properties the ingestion API accepts."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from agents.check.event_schema import (
    EventRefused,
    EventSchemaError,
    SchemaFile,
    check_event,
    event_problems,
    load_event_schema,
    parse_event_schema,
)
from schemas.inputs import Identify, Input, Track
from streams.http.server import create_app
from streams.settings import Settings

AUTH = {"Authorization": "Basic " + base64.b64encode(b"site:key").decode()}
WRITE_KEY = {"Authorization": "Basic " + base64.b64encode(b"wk:").decode()}

EVENTS_YAML = """\
events:
  signed_up:
    properties: {plan: string, seats: integer}
  purchased:
    properties: {amount: number, coupon: [string, "null"], items: array, meta: any}
  viewed_pricing: {}
"""
SCHEMA = parse_event_schema(
    {
        "events": {
            "signed_up": {"properties": {"plan": "string", "seats": "integer"}},
            "purchased": {"properties": {"amount": "number", "coupon": ["string", "null"], "items": "array", "meta": "any"}},
            "viewed_pricing": None,
        }
    }
)


def test_a_declared_event_with_declared_properties_of_the_right_types_is_accepted() -> None:
    check_event(SCHEMA, "signed_up", {"plan": "pro", "seats": 3})
    check_event(SCHEMA, "purchased", {"amount": 9.5, "coupon": None, "items": [1], "meta": {"a": 1}})
    check_event(SCHEMA, "viewed_pricing", {})


def test_declared_properties_are_optional() -> None:
    check_event(SCHEMA, "signed_up", {})


def test_an_undeclared_event_is_refused_naming_it_the_file_and_the_declared_events() -> None:
    with pytest.raises(EventRefused) as refused:
        check_event(SCHEMA, "signed_upp", {"plan": "pro"})
    message = str(refused.value)
    assert "'signed_upp' is not declared in events.yaml" in message
    assert "purchased, signed_up, viewed_pricing" in message


def test_an_undeclared_property_is_refused_naming_the_event_the_property_and_the_file() -> None:
    assert event_problems(SCHEMA, "signed_up", {"plann": "pro"}) == [
        "event 'signed_up': property 'plann' is not declared in events.yaml (declared: plan, seats)"
    ]


def test_an_event_declared_without_properties_takes_none() -> None:
    [problem] = event_problems(SCHEMA, "viewed_pricing", {"path": "/pricing"})
    assert "property 'path' is not declared" in problem and "(declared: none)" in problem


def test_a_property_of_the_wrong_type_is_refused_naming_both_types() -> None:
    [problem] = event_problems(SCHEMA, "signed_up", {"plan": 5})
    assert problem.startswith("event 'signed_up': property 'plan' must be string, got number 5")
    assert problem.endswith("(per events.yaml)")


def test_integer_means_a_whole_number_and_number_takes_integers_too() -> None:
    assert event_problems(SCHEMA, "signed_up", {"seats": 2.0}) == []
    assert len(event_problems(SCHEMA, "signed_up", {"seats": 2.5})) == 1
    assert event_problems(SCHEMA, "purchased", {"amount": 3}) == []


def test_a_boolean_is_not_a_number() -> None:
    assert len(event_problems(SCHEMA, "purchased", {"amount": True})) == 1


def test_a_list_of_types_allows_any_of_them() -> None:
    assert event_problems(SCHEMA, "purchased", {"coupon": "X"}) == []
    assert event_problems(SCHEMA, "purchased", {"coupon": None}) == []
    [problem] = event_problems(SCHEMA, "purchased", {"coupon": 1})
    assert "must be null or string, got number" in problem


def test_every_problem_of_an_event_is_reported_at_once() -> None:
    with pytest.raises(EventRefused) as refused:
        check_event(SCHEMA, "signed_up", {"plan": 1, "x": 1})
    assert "'plan' must be" in str(refused.value) and "'x' is not declared" in str(refused.value)


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ({"signed_up": {}}, "expected a mapping `events:`"),
        ({"events": {"a": {}}, "extra": 1}, "unknown top-level key(s) extra"),
        ({"events": {"a": {"properties": {"p": "text"}}}}, "events.a.properties.p: the type must be one of"),
        ({"events": {"a": {"props": {}}}}, "events.a: expected {properties"),
        ({"events": {"a": {"properties": ["p"]}}}, "events.a.properties: expected a mapping"),
    ],
)
def test_a_malformed_schema_names_the_file_and_where(raw, fragment) -> None:
    with pytest.raises(EventSchemaError) as error:
        parse_event_schema(raw, "events.yaml")
    assert str(error.value).startswith("events.yaml")
    assert fragment in str(error.value)


def test_strict_mode_without_an_events_file_says_where_to_put_one(tmp_path: Path) -> None:
    with pytest.raises(EventSchemaError) as error:
        load_event_schema(tmp_path / "events.yaml")
    assert "NUDGE_STRICT_EVENTS is on but there is no" in str(error.value)
    assert str(tmp_path / "events.yaml") in str(error.value)


def test_invalid_yaml_is_an_error_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "events.yaml"
    path.write_text("events: {a: [\n")
    with pytest.raises(EventSchemaError, match="cannot be read as YAML"):
        load_event_schema(path)


def test_the_schema_file_is_re_read_when_it_changes_and_a_broken_edit_keeps_the_last_good_one(tmp_path: Path) -> None:
    path = tmp_path / "events.yaml"
    path.write_text("events: {a: {}}\n")
    source = SchemaFile(path)
    assert set(source.current().events) == {"a"}
    path.write_text("events: {a: {}, b: {}}\n")
    os.utime(path, ns=(1, 1))  # a different mtime even on coarse clocks
    assert set(source.current().events) == {"a", "b"}
    path.write_text("events: [broken\n")
    os.utime(path, ns=(2, 2))
    assert set(source.current().events) == {"a", "b"}


class Recorder:
    def __init__(self) -> None:
        self.inputs: list[Input] = []

    async def publish(self, inputs: list[Input]) -> None:
        self.inputs.extend(inputs)


def settings(folder: Path, strict: bool = True) -> Settings:
    return Settings(
        site_id="site", api_key="key", segment_write_key="wk", rate_limit_per_second=0,
        campaigns_dir=folder, strict_events=strict,
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "events.yaml").write_text(EVENTS_YAML)
    return tmp_path


async def test_strict_mode_refuses_an_undeclared_track_api_event_and_publishes_nothing(project: Path) -> None:
    published = Recorder()
    async with TestClient(TestServer(create_app(settings(project), published))) as client:
        response = await client.post("/api/v1/customers/ana/events", json={"name": "signed_upp"}, headers=AUTH)
        body = await response.json()
    assert response.status == 400
    assert "'signed_upp' is not declared in events.yaml" in body["meta"]["error"]
    assert published.inputs == []


async def test_strict_mode_accepts_declared_events_identifies_and_page_views(project: Path) -> None:
    published = Recorder()
    async with TestClient(TestServer(create_app(settings(project), published))) as client:
        ok = [
            await client.post("/api/v1/customers/ana/events", json={"name": "signed_up", "data": {"plan": "pro"}}, headers=AUTH),
            await client.put("/api/v1/customers/ana", json={"anything": 1}, headers=AUTH),
            await client.post("/api/v1/customers/ana/events", json={"name": "/any/page", "type": "page"}, headers=AUTH),
        ]
    assert [r.status for r in ok] == [200, 200, 200]
    assert [type(i) for i in published.inputs] == [Track, Identify, Track]


async def test_strict_mode_refuses_a_wrongly_typed_anonymous_event(project: Path) -> None:
    published = Recorder()
    async with TestClient(TestServer(create_app(settings(project), published))) as client:
        response = await client.post(
            "/api/v1/events", json={"anonymous_id": "x", "name": "signed_up", "data": {"seats": "two"}}, headers=AUTH
        )
        body = await response.json()
    assert response.status == 400
    assert "property 'seats' must be integer, got string" in body["meta"]["error"]


async def test_strict_mode_refuses_a_segment_batch_with_one_bad_event_in_segments_shape(project: Path) -> None:
    published = Recorder()
    batch = {"batch": [
        {"type": "track", "userId": "ana", "event": "signed_up", "properties": {"plan": "pro"}},
        {"type": "track", "userId": "bo", "event": "purchased", "properties": {"amount": "9"}},
    ]}
    async with TestClient(TestServer(create_app(settings(project), published))) as client:
        response = await client.post("/v1/batch", json=batch, headers=WRITE_KEY)
        body = await response.json()
    assert response.status == 400
    assert body["success"] is False and "property 'amount' must be number" in body["error"]
    assert published.inputs == []


async def test_without_strict_mode_any_event_is_accepted(tmp_path: Path) -> None:
    published = Recorder()
    async with TestClient(TestServer(create_app(settings(tmp_path, strict=False), published))) as client:
        response = await client.post("/v1/track", json={"userId": "ana", "event": "whatever", "properties": {"x": 1}}, headers=WRITE_KEY)
    assert response.status == 200
    assert len(published.inputs) == 1


def test_strict_mode_without_an_events_file_fails_at_start(tmp_path: Path) -> None:
    with pytest.raises(EventSchemaError, match=r"no .*events\.yaml"):
        create_app(settings(tmp_path), Recorder())


def test_strict_events_is_read_from_the_environment() -> None:
    assert Settings.from_env({"NUDGE_STRICT_EVENTS": "true"}).strict_events is True
    assert Settings.from_env({}).strict_events is False
