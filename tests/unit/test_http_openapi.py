"""The OpenAPI document is generated from the operations: every route is in it, every example validates."""

from __future__ import annotations

import re

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer
from jsonschema import Draft202012Validator
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from streams.console.web import console_routes
from streams.http.openapi import openapi_document
from streams.http.operations import json_body, validate
from streams.http.server import api_operations, create_app
from streams.settings import Settings


class Nothing:
    async def publish(self, inputs) -> None:
        return None


OPERATIONS = api_operations(Settings(), Nothing())
CONSOLE_OPERATOR_ROUTES = {("get", "/ready"), ("get", "/metrics")}
DOCUMENT = openapi_document(OPERATIONS)


def app_routes() -> set[tuple[str, str]]:
    app = create_app(Settings(), Nothing())
    routes = set()
    for route in app.router.routes():
        if route.method in ("HEAD", "OPTIONS"):
            continue  # aiohttp adds HEAD beside every GET; OPTIONS are the browser routes' preflights
        path = re.sub(r"\{(\w+)(:[^}]*)?\}", r"{\1}", route.resource.canonical)
        routes.add((route.method.lower(), path))
    # The web console's pages are for browsers (README, "The console"), not this API document.
    # /ready and /metrics are the console's operator routes, registered beside the API.
    return routes - console_routes() - CONSOLE_OPERATOR_ROUTES


def documented() -> set[tuple[str, str]]:
    return {(method, path) for path, item in DOCUMENT["paths"].items() for method in item}


def test_every_route_of_the_app_is_in_the_document():
    assert app_routes() - documented() == set()


def test_every_documented_operation_is_served():
    assert documented() - app_routes() == set()


def test_the_document_is_valid_openapi_3_1():
    from openapi_spec_validator import validate as validate_spec

    validate_spec(DOCUMENT)


def test_every_schema_reference_resolves():
    text = repr(DOCUMENT)
    for name in re.findall(r"#/components/schemas/(\w+)", text):
        assert name in DOCUMENT["components"]["schemas"], name


def test_path_parameters_are_declared_for_every_templated_path():
    for path, item in DOCUMENT["paths"].items():
        wanted = set(re.findall(r"\{(\w+)\}", path))
        for operation in item.values():
            declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert declared == wanted, (path, declared)


def test_every_operation_with_credentials_names_a_declared_scheme():
    schemes = DOCUMENT["components"]["securitySchemes"]
    for path, item in DOCUMENT["paths"].items():
        for method, operation in item.items():
            for requirement in operation.get("security", []):
                assert set(requirement) <= set(schemes), (method, path)


EXAMPLES = [
    pytest.param(operation, example, id=f"{operation.method} {operation.path} #{index}")
    for operation in OPERATIONS if operation.body is not None
    for index, example in enumerate(
        (operation.body.model_config.get("json_schema_extra") or {}).get("examples", [])
        if hasattr(operation.body, "model_config") else []
    )
]


def test_every_body_model_with_examples_is_exercised():
    assert len(EXAMPLES) >= 15


@pytest.mark.parametrize(("operation", "example"), EXAMPLES)
def test_every_documented_example_is_accepted_by_its_model(operation, example):
    data = json_body(orjson.dumps(example))
    validate(operation.body, data)


@pytest.mark.parametrize(("operation", "example"), EXAMPLES)
def test_every_documented_example_matches_the_generated_schema(operation, example):
    registry = Registry().with_resource("urn:nudge", DRAFT202012.create_resource(DOCUMENT))
    reference = {"$ref": f"urn:nudge#/components/schemas/{operation.body.__name__}"}
    Draft202012Validator(reference, registry=registry).validate(example)


async def test_the_document_is_served_at_openapi_json():
    async with TestClient(TestServer(create_app(Settings(), Nothing()))) as client:
        response = await client.get("/openapi.json")
        document = await response.json()
    assert response.status == 200
    assert document["openapi"] == "3.1.0"
    assert "/api/v2/batch" in document["paths"]
