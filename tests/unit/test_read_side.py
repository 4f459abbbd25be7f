"""The read side's pure parts: catalog grouping, query parameters, manual segment requests, CLI tables."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from schemas.inputs import Input, SegmentMembership
from schemas.read_side import ActivityEntry, CatalogRow, group_catalog
from schemas.track_api import SegmentIdsBody
from streams.cli.activity import activity_line
from streams.cli.events import catalog_rows
from streams.cli.tables import format_table, iso
from streams.http.errors import ApiError
from streams.http.manual_segments_api import membership_inputs
from streams.http.read_api import read_api_operations
from streams.http.server import create_app, operations_app
from streams.http.validation import parse_model
from streams.settings import Settings

AUTH = {"Authorization": "Basic " + base64.b64encode(b"site:key").decode()}
T0 = 1_772_442_000.0


def row(property: str, json_type: str, count: int, first: float = T0, last: float = T0, event: str = "purchased") -> CatalogRow:
    return CatalogRow(event=event, type="event", property=property, json_type=json_type,
                      first_seen=first, last_seen=last, count=count)


def test_the_catalog_groups_properties_under_their_event_with_every_type_seen() -> None:
    [event] = group_catalog([
        row("", "event", 3, T0, T0 + 20),
        row("amount", "number", 2, T0, T0 + 10),
        row("amount", "string", 1, T0 + 20, T0 + 20),
        row("sku", "string", 3, T0, T0 + 20),
    ])
    assert (event.event, event.type, event.count, event.first_seen, event.last_seen) == ("purchased", "event", 3, T0, T0 + 20)
    amount, sku = event.properties
    assert (amount.name, amount.types, amount.count, amount.by_type) == ("amount", ["number", "string"], 3, {"number": 2, "string": 1})
    assert (amount.first_seen, amount.last_seen) == (T0, T0 + 20)
    assert (sku.name, sku.types) == ("sku", ["string"])


def test_the_catalog_lists_events_by_name() -> None:
    names = [e.event for e in group_catalog([row("", "event", 1, event="b"), row("", "event", 1, event="a")])]
    assert names == ["a", "b"]


def test_the_events_command_prints_an_event_row_then_one_row_per_property() -> None:
    rows = catalog_rows(group_catalog([row("", "event", 2), row("amount", "number", 2)]))
    assert rows == [
        ("purchased", "", "event", "2", iso(T0), iso(T0)),
        ("", "amount", "number", "2", iso(T0), iso(T0)),
    ]


def test_tables_align_columns_and_leave_the_last_one_unpadded() -> None:
    assert format_table(("A", "BB", "C"), [("long", "x", "end")]) == ["A     BB  C", "long  x   end"]


def test_an_activity_line_shows_id_time_person_kind_and_what_changed() -> None:
    entry = ActivityEntry(id=7, person="ana", at=T0, kind="identify", summary="identify; plan: None -> pro")
    line = activity_line(entry)
    assert line.split() == ["7", "2026-03-02T09:00:00Z", "ana", "identify", "identify;", "plan:", "None", "->", "pro"]


def test_add_customers_makes_one_membership_input_per_distinct_id() -> None:
    inputs = membership_inputs("vip", parse_model(SegmentIdsBody, {"ids": ["ana", 42, "ana"]}), member=True, now=T0)
    assert inputs == [
        SegmentMembership(person="ana", at=T0, segment="vip", member=True),
        SegmentMembership(person="42", at=T0, segment="vip", member=True),
    ]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({}, "`ids` is required"),
        ({"ids": []}, "`ids` must not be empty"),
        ({"ids": "ana"}, "`ids` must be an array"),
        ({"ids": [True]}, "`ids[0]` must be a string"),
        ({"ids": [""]}, "`ids[0]` must not be blank"),
        ({"ids": ["x"] * 1001}, "`ids` must have at most 1000 items"),
    ],
)
def test_a_bad_membership_body_is_a_400_saying_what_to_send(body, fragment) -> None:
    with pytest.raises(ApiError) as error:
        parse_model(SegmentIdsBody, body)
    assert error.value.status == 400 and fragment in error.value.message


class Recorder:
    def __init__(self) -> None:
        self.inputs: list[Input] = []

    async def publish(self, inputs: list[Input]) -> None:
        self.inputs.extend(inputs)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "segments").mkdir()
    (tmp_path / "segments" / "vip.yaml").write_text("id: vip\nmanual: true\n")
    (tmp_path / "segments" / "pro.yaml").write_text("id: pro\nwhen: {attribute: plan, eq: pro}\n")
    return tmp_path


async def manual_request(project: Path, path: str, body: object) -> tuple[int, dict, list[Input]]:
    published = Recorder()
    settings = Settings(site_id="site", api_key="key", rate_limit_per_second=0, campaigns_dir=project)
    async with TestClient(TestServer(create_app(settings, published))) as client:
        response = await client.post(path, json=body, headers=AUTH)
        return response.status, await response.json(), published.inputs


async def test_remove_customers_publishes_memberships_to_remove(project: Path) -> None:
    status, body, inputs = await manual_request(project, "/api/v1/segments/vip/remove_customers", {"ids": ["ana"]})
    assert (status, body) == (200, {})
    assert inputs == [SegmentMembership(person="ana", at=inputs[0].at, segment="vip", member=False)]


async def test_a_segment_kept_by_a_condition_takes_no_ids(project: Path) -> None:
    status, body, inputs = await manual_request(project, "/api/v1/segments/pro/add_customers", {"ids": ["ana"]})
    assert status == 400 and "kept by its `when` condition" in body["meta"]["error"]
    assert inputs == []


async def test_an_unknown_segment_is_a_404_saying_how_to_define_it(project: Path) -> None:
    status, body, _ = await manual_request(project, "/api/v1/segments/nope/add_customers", {"ids": ["ana"]})
    assert status == 404 and "segments/nope.yaml with `manual: true`" in body["meta"]["error"]


async def test_only_ids_identify_people(project: Path) -> None:
    status, body, _ = await manual_request(project, "/api/v1/segments/vip/add_customers?id_type=email", {"ids": ["a@x.io"]})
    assert status == 400 and "by `id` only" in body["meta"]["error"]


READ_SETTINGS = Settings(site_id="site", api_key="key", read_api_key="read-key-0123")
READ = {"Authorization": "Bearer read-key-0123"}


async def read_client(pool: object = None) -> TestClient:
    async def factory():
        return pool

    app = operations_app(read_api_operations(READ_SETTINGS, pool_factory=factory), READ_SETTINGS)
    return TestClient(TestServer(app))


async def test_the_read_side_needs_the_read_key() -> None:
    async with await read_client() as client:
        response = await client.get("/api/v1/activity")
        assert response.status == 401
        assert "NUDGE_READ_API_KEY" in (await response.json())["meta"]["error"]


async def test_the_track_api_key_does_not_open_the_read_side() -> None:
    async with await read_client() as client:
        response = await client.get("/api/v1/activity", headers=AUTH)
        assert response.status == 401


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        ("limit=0", "`query.limit` must be at least 1"),
        ("limit=5000", "`query.limit` must be at most 1000"),
        ("limit=ten", "`query.limit` must be an integer"),
        ("before=-3", "`query.before` must be at least 1"),
        ("kind=%00", "`query.kind` contains a NUL character"),
        ("limit=1&limit=2", "`query.limit` is given more than once"),
    ],
)
async def test_query_parameters_out_of_range_are_a_400_naming_them(query: str, fragment: str) -> None:
    async with await read_client() as client:
        response = await client.get(f"/api/v1/activity?{query}", headers=READ)
        assert response.status == 400
        assert fragment in (await response.json())["meta"]["error"]
