"""No request a client can send makes the API answer 5xx: property-based, against the real app.

Two generators, both with a fixed seed (hypothesis `derandomize`) and a small budget in CI:

- schemathesis, from the generated OpenAPI document, in positive and negative modes;
- hostile bodies and parameters of our own: JSON nested hundreds deep, NUL characters and lone
  surrogates (as JSON escapes), wrong types at every known field, huge numbers, `%00` and
  oversized path segments and query values.

The API runs in-process on a real port, with a real migrated PostgreSQL and a publisher that
encodes every envelope exactly as the Kafka publisher does (so a value the wire cannot carry
fails here as it would there). Every request carries the credential its route takes, so the
requests get past authentication to the validation behind it.

`NUDGE_HOSTILE_EXAMPLES` sets the budget per generator (CI: 250; the figure in the README was
measured with 5000 each, 10,000 requests).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from aiohttp import web
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from security_keys import CREDENTIALS, KEYS, SECRET

from deploy.local import postgres
from deploy.local.runner import free_port
from schemas.wire import encode_envelope
from streams import database
from streams.http.openapi import openapi_document
from streams.http.operations import Operation
from streams.http.server import api_operations, operations_app
from streams.settings import Settings

pytestmark = pytest.mark.integration

BUDGET = int(os.environ.get("NUDGE_HOSTILE_EXAMPLES", "250"))
HYPOTHESIS = hypothesis_settings(
    max_examples=BUDGET, derandomize=True, deadline=None, database=None,
    phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck),
)
# Which credential each route scheme gets, so requests reach the validation behind it.
SCHEME_CREDENTIAL = {"trackBasic": "track", "readKey": "read", "sendKey": "send", "writeKey": "segment",
                     "webhookSignature": "segment"}


class EncodingPublisher:
    """Publishes nowhere, but encodes each batch as the Kafka publisher would."""

    async def publish(self, inputs: list[Any]) -> None:
        encode_envelope(inputs)


@pytest.fixture(scope="module")
def deployment(local_stack, tmp_path_factory) -> Iterator[tuple[str, list[Operation]]]:
    project = tmp_path_factory.mktemp("hostile")
    (project / "segments").mkdir()
    (project / "segments" / "vip.yaml").write_text("id: vip\nmanual: true\n")
    (project / "segments" / "pro.yaml").write_text("id: pro\nwhen: {attribute: plan, eq: pro}\n")
    (project / "campaigns").mkdir()
    (project / "campaigns" / "news.yaml").write_text("id: news\ntrigger: {event: x}\nsteps:\n  - send: news\n")
    (project / "templates").mkdir()
    (project / "templates" / "news.html").write_text("---\nsubject: News\n---\n<p>Hi</p>\n")
    name = f"nudge_test_{uuid.uuid4().hex[:12]}"
    settings = Settings(
        database_url=postgres.create_database(name), campaigns_dir=project, site_id="sec-site",
        secret_key=SECRET, rate_limit_per_second=0, browser_rate_limit_per_second=0,
        kafka_bootstrap="127.0.0.1:1", cors_origins="https://shop.example", **KEYS,
    )
    operations = api_operations(settings, EncodingPublisher())
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    port = free_port()
    runner = web.AppRunner(operations_app(operations, settings), access_log=None)

    async def start() -> None:
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()

    async def stop() -> None:
        await runner.cleanup()
        await database.close_pool()

    asyncio.run_coroutine_threadsafe(start(), loop).result(30)
    try:
        yield f"http://127.0.0.1:{port}", operations
    finally:
        asyncio.run_coroutine_threadsafe(stop(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        postgres.drop_database(name)


def credential_for(path: str, method: str, operations: list[Operation]) -> dict[str, str]:
    for operation in operations:
        if operation.method == method.upper() and re.fullmatch(
            re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(operation.path)), path.split("?")[0]
        ):
            if operation.auth is None:
                return {}
            return {"Authorization": CREDENTIALS[SCHEME_CREDENTIAL[operation.auth.name]]}
    return {}


class Failures:
    """The 5xx answers seen, with what was sent."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.sent = 0

    def check(self, method: str, url: str, response: requests.Response, body: Any = None) -> None:
        self.sent += 1
        if response.status_code >= 500:
            self.seen.append(f"{response.status_code} {method} {url[:200]} body={str(body)[:200]} -> {response.text[:200]}")


# --- schemathesis, from the generated document ---------------------------------------------


def test_schemathesis_cases_from_the_openapi_document_never_get_a_5xx(deployment):
    import schemathesis
    from schemathesis.generation.modes import GenerationMode

    base, operations = deployment
    schema = schemathesis.openapi.from_dict(openapi_document(operations))
    strategies = []
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            strategies.append(operation.as_strategy(generation_mode=mode))
    failures = Failures()
    session = requests.Session()

    @HYPOTHESIS
    @given(st.sampled_from(strategies).flatmap(lambda strategy: strategy))
    def run(case: Any) -> None:
        try:
            kwargs = case.as_transport_kwargs(base_url=base)
        except Exception:  # a negative case that no HTTP request can carry
            return
        path = kwargs["url"].removeprefix(base)
        kwargs["headers"] = {**(kwargs.get("headers") or {}), **credential_for(path, kwargs["method"], operations)}
        kwargs.pop("verify", None)
        try:
            response = session.request(**kwargs, timeout=30, allow_redirects=False)
        except (requests.exceptions.InvalidHeader, requests.exceptions.InvalidURL, ValueError, UnicodeError):
            return  # refused by the client library itself: never reached the server
        failures.check(kwargs["method"], kwargs["url"], response, kwargs.get("json"))

    run()
    print(f"\n{failures.sent} requests, {len(failures.seen)} answered 5xx")
    assert failures.sent > 0
    assert failures.seen == [], "\n".join(failures.seen[:20])


# --- our own hostile requests --------------------------------------------------------------

NUL = "a\u0000b"
SURROGATE_ESCAPE = '"\\ud800"'  # a lone surrogate, as JSON text carries it
leaves = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=20),
    st.just(NUL), st.just("\u0000"), st.just("x" * 2000), st.just("a@x.test, b@evil.test"),
)
json_values = st.recursive(
    leaves, lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12,
)


def nested(depth: int, kind: str) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value] if kind == "list" else {"a": value}
    return value


deep = st.builds(nested, st.integers(min_value=30, max_value=600), st.sampled_from(["list", "dict"]))
FIELDS = ("name", "data", "email", "timestamp", "id", "type", "anonymous_id", "device", "primary", "secondary",
          "ids", "batch", "userId", "anonymousId", "event", "traits", "properties", "context", "sentAt",
          "identifiers", "action", "attributes", "to", "transactional_message_id", "message_data",
          "subject", "campaign", "segment", "rate", "dry_run", "reason", "detail", "created_at", "_update")
bodies = st.one_of(
    st.dictionaries(st.sampled_from(FIELDS), st.one_of(json_values, deep), max_size=6),
    st.builds(lambda field, value: {"batch": [{"type": "track", "userId": "a", "event": "e", field: value}]},
              st.sampled_from(FIELDS), st.one_of(json_values, deep)),
    st.builds(lambda field, value: {"type": "person", "action": "identify", "identifiers": {"id": "a"},
                                    "attributes": {field: value}}, st.sampled_from(FIELDS), json_values),
    json_values,
)
segments = st.one_of(
    st.sampled_from(["ana", "%00", "a%00b", "%ED%A0%80", "%FF", "x" * 400, "%2F", "..", "a%20b@x.test", " "]),
    st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=20).map(lambda t: requests.utils.quote(t, safe="")),
)
query_values = st.one_of(st.sampled_from(["%00", "abc", "-1", "0", "99999999999999999999", "[1]", "%ED%A0%80", ""]),
                         st.text(max_size=10).map(lambda t: requests.utils.quote(t, safe="")))


def test_hostile_bodies_paths_and_queries_never_get_a_5xx(deployment):
    base, operations = deployment
    failures = Failures()
    session = requests.Session()

    @HYPOTHESIS
    @given(st.sampled_from(operations), bodies, segments, st.sampled_from(["limit", "before", "kind", "person", "after",
           "u", "id_type", "writeKey"]), query_values, st.booleans(), st.booleans())
    def run(operation: Operation, body: Any, segment: str, key: str, value: str, surrogate: bool, gzip: bool) -> None:
        path = re.sub(r"\{\w+\}", segment, operation.path)
        url = f"{base}{path}?{key}={value}"
        text = json.dumps(body)
        if surrogate and text.startswith("{"):
            text = '{"x": ' + SURROGATE_ESCAPE + ", " + text[1:] if text != "{}" else '{"x": ' + SURROGATE_ESCAPE + "}"
        headers = {"Content-Type": "application/json",
                   **credential_for(path, operation.method, operations)}
        if gzip:
            headers["Content-Encoding"] = "gzip"  # a body that is not gzip
        response = session.request(operation.method, url, data=text.encode(), headers=headers, timeout=30,
                                   allow_redirects=False)
        failures.check(operation.method, url, response, text)

    run()
    print(f"\n{failures.sent} requests, {len(failures.seen)} answered 5xx")
    assert failures.sent > 0
    assert failures.seen == [], "\n".join(failures.seen[:20])


@pytest.mark.parametrize(
    ("method", "path", "raw"),
    [
        ("POST", "/api/v1/customers/a/events", '{"name": "e", "data": ' + "[" * 1000 + "]" * 1000 + "}"),
        ("PUT", "/api/v1/customers/a", '{"tags": ' + "[" * 400 + "]" * 400 + "}"),
        ("PUT", "/api/v1/customers/a", '{"first_name": "a\\u0000b"}'),
        ("PUT", "/api/v1/suppressions/a@x.test", '{"reason": "a\\u0000b"}'),
        ("PUT", "/api/v1/suppressions/a@x.test", '{"reason": "\\ud800"}'),
        ("PUT", "/api/v1/suppressions/a@x.test", '{"reason": {}}'),
        ("POST", "/api/v1/broadcasts", '{"campaign": "news", "segment": "vip", "rate": "abc"}'),
        ("POST", "/api/v1/broadcasts", '{"campaign": "news", "segment": "vip", "rate": [1]}'),
        ("POST", "/api/v1/broadcasts", '{"campaign": "news", "segment": "vip", "rate": {}}'),
        ("POST", "/v1/send/email", '{"transactional_message_id": "a\\u0000", "to": "a@x.test", "identifiers": {"id": "a\\u0000"}}'),
        ("GET", "/api/v1/activity?kind=%00", None),
        ("GET", "/api/v1/activity?person=%00", None),
        ("GET", "/api/v1/segments/%00/members", None),
        ("GET", "/api/v1/messages/%00", None),
        ("DELETE", "/api/v1/suppressions/%00", None),
        ("POST", "/v1/batch", '{"batch": [{"type": "identify", "userId": "a", "traits": {"x": "\\u0000"}}]}'),
        ("POST", "/api/v2/batch", '{"batch": [{"type": "person", "action": "identify", "identifiers": {"id": "a"}, '
                                  '"attributes": {"x": ' + "{\"a\": " * 300 + "1" + "}" * 300 + "}}]}"),
    ],
)
def test_the_probes_that_found_500s_before_are_each_a_400(deployment, method, path, raw):
    base, operations = deployment
    headers = {"Content-Type": "application/json", **credential_for(path, method, operations)}
    response = requests.request(method, base + path, data=raw.encode() if raw else None, headers=headers, timeout=30)
    assert response.status_code == 400, response.text
    assert "meta" in response.json() or "error" in response.json()
