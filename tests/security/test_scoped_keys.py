"""Every route of the API, called with every credential: each key opens its own routes only.

The matrix is built from the operations themselves (streams/http/server.api_operations), so a
new route is checked the day it is added, and a new public route fails the list below until
someone decides it may be public.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from security_keys import ADMITS, CREDENTIALS, KEYS

from streams.http.operations import Operation
from streams.http.server import api_operations, operations_app
from streams.settings import Settings

# Routes that answer without a key, and what protects them instead.
PUBLIC = {
    ("GET", "/health"): "nothing to protect",
    ("GET", "/openapi.json"): "the API's own description",
    ("GET", "/unsubscribe/{token}"): "the link's signature",
    ("POST", "/unsubscribe/{token}"): "the link's signature",
    ("GET", "/preferences/{token}"): "the link's signature",
    ("POST", "/preferences/{token}"): "the link's signature",
    ("GET", "/o/{token}.gif"): "the link's signature",
    ("GET", "/c/{token}"): "the link's signature (covering the URL)",
    ("GET", "/v1/projects/{write_key}/settings"): "the public browser key in the path",
    ("GET", "/sourceConfig/"): "the public browser key in the query",
}


class Recorder:
    def __init__(self) -> None:
        self.inputs: list[Any] = []

    async def publish(self, inputs: list[Any]) -> None:
        self.inputs.extend(inputs)


def example_body(operation: Operation) -> Any:
    config = getattr(operation.body, "model_config", {}) or {}
    examples = (config.get("json_schema_extra") or {}).get("examples") or [{}]
    return examples[0] if operation.body is not None else None


def concrete_path(operation: Operation) -> str:
    values = {"address": "ana@example.com", "token": "x.y", "write_key": KEYS["browser_write_key"]}
    return re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1), "ana"), operation.path)


def guarded(settings: Settings) -> list[Operation]:
    return [op for op in api_operations(settings, Recorder()) if op.auth is not None]


def test_only_the_listed_routes_answer_without_a_key(settings):
    public = {(op.method, op.path) for op in api_operations(settings, Recorder()) if op.auth is None}
    assert public == set(PUBLIC)


def test_every_write_route_needs_a_key_or_a_signed_link(settings):
    for operation in api_operations(settings, Recorder()):
        if operation.method != "GET" and operation.auth is None:
            assert "signature" in PUBLIC[(operation.method, operation.path)], operation.path


async def call(client: TestClient, operation: Operation, header: str | None) -> int:
    headers = {"Authorization": header} if header else {}
    body = example_body(operation)
    response = await client.request(operation.method, concrete_path(operation), json=body, headers=headers)
    return response.status


CASES = [
    pytest.param(index, credential, id=f"{op.method} {op.path} as {credential}")
    for index, op in enumerate(guarded(Settings()))
    for credential in CREDENTIALS
]


@pytest.mark.parametrize(("index", "credential"), CASES)
async def test_a_key_opens_its_own_routes_and_no_other(settings, index, credential):
    operation = guarded(settings)[index]
    async with TestClient(TestServer(operations_app(guarded(settings), settings))) as client:
        status = await call(client, operation, CREDENTIALS[credential])
    admitted = credential in ADMITS[operation.auth.name]
    if credential == "browser" and operation.path in ("/v1/alias", "/v1/a"):
        admitted = False  # a page must not merge people
    if credential == "browser" and operation.auth.name == "webhookSignature":
        admitted = False  # webhooks take the server key
    if admitted:
        assert status not in (401, 403), status
    else:
        assert status in (401, 403), status


async def test_the_browser_key_cannot_read_a_profile(settings):
    async with TestClient(TestServer(operations_app(guarded(settings), settings))) as client:
        response = await client.get("/api/v1/customers/ana/profile", headers={"Authorization": CREDENTIALS["browser"]})
        assert response.status == 401
        response = await client.get("/api/v1/customers/ana/profile",
                                    headers={"Authorization": f"Bearer {KEYS['browser_write_key']}"})
        assert response.status == 401


async def test_an_unset_key_closes_its_routes_and_says_which_setting_opens_them(tmp_path):
    settings = Settings(site_id="s", api_key="sec-track-key-0123456789", secret_key="x" * 40)
    async with TestClient(TestServer(operations_app(guarded(settings), settings))) as client:
        for path, setting in (("/api/v1/activity", "NUDGE_READ_API_KEY"), ("/api/v1/suppressions", "NUDGE_READ_API_KEY")):
            response = await client.get(path, headers={"Authorization": "Bearer anything"})
            assert response.status == 401 and setting in (await response.json())["meta"]["error"]
        response = await client.post("/v1/send/email", json={}, headers={"Authorization": "Bearer "})
        assert response.status == 401 and "NUDGE_SEND_API_KEY" in (await response.json())["meta"]["error"]
