"""The OpenAPI document describes every route the app serves, and is served itself."""

from __future__ import annotations

import re

from aiohttp.test_utils import TestClient, TestServer

from streams.console.web import console_routes
from streams.http.openapi import openapi_document
from streams.http.server import create_app
from streams.settings import Settings


class Nothing:
    async def publish(self, inputs) -> None:
        return None


def app_routes() -> set[tuple[str, str]]:
    app = create_app(Settings(), Nothing())
    routes = set()
    for route in app.router.routes():
        if route.method == "HEAD":
            continue  # aiohttp adds HEAD beside every GET
        path = re.sub(r"\{(\w+)(:[^}]*)?\}", r"{\1}", route.resource.canonical)
        routes.add((route.method.lower(), path))
    # The web console's pages are for browsers (README, "The console"), not this API document.
    return routes - console_routes()


def test_every_route_of_the_app_is_in_the_document():
    paths = openapi_document()["paths"]
    documented = {(method, path) for path, item in paths.items() for method in item}
    assert app_routes() - documented == set()


def test_every_documented_operation_is_served():
    paths = openapi_document()["paths"]
    documented = {(method, path) for path, item in paths.items() for method in item}
    assert documented - app_routes() == set()


def test_every_schema_reference_resolves():
    document = openapi_document()
    text = repr(document)
    for name in re.findall(r"#/components/schemas/(\w+)", text):
        assert name in document["components"]["schemas"], name


def test_path_parameters_are_declared_for_every_templated_path():
    for path, item in openapi_document()["paths"].items():
        wanted = set(re.findall(r"\{(\w+)\}", path))
        for operation in item.values():
            declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert declared == wanted, (path, declared)


async def test_the_document_is_served_at_openapi_json():
    async with TestClient(TestServer(create_app(Settings(), Nothing()))) as client:
        response = await client.get("/openapi.json")
        document = await response.json()
    assert response.status == 200
    assert document["openapi"] == "3.1.0"
