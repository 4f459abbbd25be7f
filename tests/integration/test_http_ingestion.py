"""Through a real API process and Kafka: every endpoint family lands the right inputs on the topic."""

from __future__ import annotations

import asyncio
import base64
import gzip
import importlib
import json
import time
import urllib.error
import urllib.request
import uuid
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from deploy.local.runner import NudgeProcesses, nudge_env
from schemas.inputs import Input
from schemas.wire import decode_inputs
from streams.http.auth import webhook_signature
from streams.settings import Settings

pytestmark = pytest.mark.integration

WRITE_KEY = "it-write-key"
SECRET = "it-webhook-secret"


@pytest.fixture(scope="module")
def api(tmp_path_factory, kafka_bootstrap):
    """One API process (no worker) for the module; each test uses its own person ids."""
    root = tmp_path_factory.mktemp("http")
    env = nudge_env(
        app_id=f"h{uuid.uuid4().hex[:10]}",
        database_url="postgresql://unused@127.0.0.1:1/unused",
        smtp_url="smtp://127.0.0.1:1",
        data_dir=root / "data",
        campaigns_dir=root,
        kafka_bootstrap=kafka_bootstrap,
    )
    env.update(NUDGE_SEGMENT_WRITE_KEY=WRITE_KEY, NUDGE_WEBHOOK_SECRET=SECRET)
    processes = NudgeProcesses(env, root / "logs")
    processes.start_api()
    yield processes
    processes.stop()


def topic_inputs(api: NudgeProcesses, persons: set[str], count: int, timeout: float = 15) -> list[Input]:
    """The first `count` inputs on the input topic whose person is in `persons`, in topic order."""

    async def consume() -> list[Input]:
        topic = api.env["NUDGE_APP_ID"] + "-input"
        consumer = AIOKafkaConsumer(bootstrap_servers=api.env["NUDGE_KAFKA_BOOTSTRAP"], enable_auto_commit=False)
        await consumer.start()
        try:
            # The API created the topic with the default partition count.
            partitions = [TopicPartition(topic, p) for p in range(Settings().partitions)]
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            found: list[Input] = []
            deadline = time.monotonic() + timeout
            while len(found) < count and time.monotonic() < deadline:
                batches = await consumer.getmany(timeout_ms=300)
                for records in batches.values():
                    for record in records:
                        found.extend(i for i in decode_inputs(record.value) if i.person in persons)
            return found
        finally:
            await consumer.stop()

    return asyncio.run(consume())


def post_raw(api: NudgeProcesses, path: str, data: bytes, headers: dict[str, str]) -> tuple[int, Any]:
    request = urllib.request.Request(api.base_url + path, data=data, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def segment(api: NudgeProcesses, path: str, body: Any) -> tuple[int, Any]:
    return api.request("POST", path, body, auth=(WRITE_KEY, ""))


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


def test_track_api_identify_and_event_reach_the_topic(api):
    ana = unique("ana")
    assert api.request("PUT", f"/api/v1/customers/{ana}", {"email": "a@example.com", "_update": True}) == (200, {})
    assert api.request("POST", f"/api/v1/customers/{ana}/events", {"name": "signed_up", "id": "e-1", "timestamp": 1700000000}) == (200, {})
    identify, track = topic_inputs(api, {ana}, 2)
    assert (identify.kind, identify.attributes, identify.update_only) == ("identify", {"email": "a@example.com"}, True)
    assert (track.kind, track.name, track.event_id, track.at) == ("track", "signed_up", "e-1", 1700000000.0)


def test_track_api_percent_encoded_slash_addresses_the_person_with_the_slash(api):
    base = unique("team")
    assert api.request("PUT", f"/api/v1/customers/{base}%2Fana", {"plan": "pro"}) == (200, {})
    [item] = topic_inputs(api, {f"{base}/ana"}, 1)
    assert item.attributes == {"plan": "pro"}


def test_track_api_lifecycle_endpoints_reach_the_topic(api):
    bo, old, cookie = unique("bo"), unique("bo-old"), unique("cookie")
    calls = [
        ("POST", "/api/v1/events", {"name": "viewed", "anonymous_id": cookie}),
        ("PUT", f"/api/v1/customers/{bo}/devices", {"device": {"id": "tok-1", "platform": "ios"}}),
        ("DELETE", f"/api/v1/customers/{bo}/devices/tok-1", None),
        ("POST", f"/api/v1/customers/{bo}/suppress", None),
        ("POST", f"/api/v1/customers/{bo}/unsuppress", None),
        ("POST", "/api/v1/merge_customers", {"primary": {"id": bo}, "secondary": {"id": old}}),
        ("DELETE", f"/api/v1/customers/{bo}", None),
    ]
    for method, path, body in calls:
        assert api.request(method, path, body) == (200, {}), path
    found = topic_inputs(api, {bo, old, "anon:" + cookie}, len(calls))
    # Order holds per person (per partition), not across people.
    assert sorted((i.kind, i.person) for i in found if i.person != bo) == [("merge_into", old), ("track", "anon:" + cookie)]
    assert [i.kind for i in found if i.person == bo] == ["devices", "devices", "suppress", "suppress", "delete"]


def test_track_api_refusals_use_customer_io_errors(api):
    status, body = api.request("POST", "/api/v1/customers/x/events", {"name": ""})
    assert status == 400 and body["meta"]["error"] == "`name` must not be empty"
    assert api.request("PUT", "/api/v1/customers/x", {}, auth=("test-site", "wrong"))[0] == 401


def test_segment_single_calls_and_batch_reach_the_topic(api):
    ana, cookie = unique("ana"), unique("c")
    assert segment(api, "/v1/identify", {"userId": ana, "anonymousId": cookie, "traits": {"plan": "pro"}}) == (200, {"success": True})
    assert segment(api, "/v1/track", {"userId": ana, "event": "Signed Up", "messageId": "m-1"})[0] == 200
    batch = {"batch": [
        {"type": "page", "userId": ana, "name": "Pricing"},
        {"type": "group", "userId": ana, "groupId": "acme"},
        {"type": "alias", "previousId": cookie, "userId": ana},
    ]}
    assert segment(api, "/v1/batch", batch) == (200, {"success": True})
    found = topic_inputs(api, {ana, cookie}, 5)
    mine = [i for i in found if i.person == ana]
    assert [i.kind for i in mine] == ["identify", "track", "track", "identify"]
    assert mine[0].anonymous_id == cookie and mine[1].event_id == "m-1"
    assert [(i.kind, i.into) for i in found if i.person == cookie] == [("merge_into", ana)]


def test_segment_gzip_batch_reaches_the_topic(api):
    ana = unique("ana")
    raw = gzip.compress(json.dumps({"batch": [{"type": "track", "userId": ana, "event": "Zipped"}]}).encode())
    token = base64.b64encode(f"{WRITE_KEY}:".encode()).decode()
    headers = {"Authorization": f"Basic {token}", "Content-Encoding": "gzip", "Content-Type": "application/json"}
    assert post_raw(api, "/v1/batch", raw, headers) == (200, {"success": True})
    [item] = topic_inputs(api, {ana}, 1)
    assert item.name == "Zipped"


@pytest.mark.parametrize("source", ["segment", "rudderstack"])
def test_signed_webhook_events_reach_the_topic(api, source):
    ana = unique("ana")
    raw = json.dumps({"type": "track", "userId": ana, "event": "Webhooked"}).encode()
    headers = {"X-Signature": webhook_signature(SECRET, raw), "Content-Type": "application/json"}
    assert post_raw(api, f"/webhooks/{source}", raw, headers) == (200, {"success": True})
    [item] = topic_inputs(api, {ana}, 1)
    assert item.name == "Webhooked"


def test_an_unsigned_webhook_is_refused(api):
    raw = json.dumps({"type": "track", "userId": "x", "event": "E"}).encode()
    status, body = post_raw(api, "/webhooks/segment", raw, {"Content-Type": "application/json"})
    assert (status, body["success"]) == (401, False)


def test_the_openapi_document_is_served(api):
    with urllib.request.urlopen(api.base_url + "/openapi.json", timeout=5) as response:
        document = json.loads(response.read())
    assert "/v1/batch" in document["paths"]


# The official client libraries (pinned test dependencies), unchanged but for their host
# setting, pointed at Nudge: what they send lands on the topic. Customer.io's clients, which
# speak https only, are in test_http_tls.py.


@pytest.mark.parametrize(
    "module", ["segment.analytics", "rudderstack.analytics"], ids=["segment", "rudderstack"]
)
def test_segment_spec_python_clients(api, module):
    sdk = importlib.import_module(module)
    errors: list[Exception] = []
    client = sdk.Client(
        WRITE_KEY,
        host=api.base_url,
        sync_mode=True,
        gzip=True,
        on_error=lambda error, batch: errors.append(error),
    )
    ana, cookie = unique("ana"), unique("cookie")
    client.identify(ana, {"plan": "pro"}, anonymous_id=cookie)
    client.track(ana, "Signed Up", {"source": "ad"}, message_id="m-1")
    client.page(ana, "Docs", "Pricing", {"url": "https://example.com/pricing"})
    client.screen(ana, "App", "Home")
    client.group(ana, "acme", {"plan": "team"})
    client.alias(cookie, ana)
    client.flush()

    assert errors == []
    # Order holds per person (per partition), not across people.
    found = topic_inputs(api, {ana, cookie}, 6)
    merged = [i for i in found if i.person == cookie]
    assert [(i.kind, i.into) for i in merged] == [("merge_into", ana)]
    mine = [i for i in found if i.person == ana]
    assert [i.kind for i in mine] == ["identify", "track", "track", "track", "identify"]
    assert (mine[0].attributes["plan"], mine[0].anonymous_id) == ("pro", cookie)
    assert (mine[1].name, mine[1].event_id, mine[1].data) == ("Signed Up", "m-1", {"source": "ad"})
    assert (mine[2].type, mine[2].name) == ("page", "Pricing")
    assert (mine[3].type, mine[3].name) == ("screen", "Home")
    assert mine[4].attributes == {"group_id": "acme", "group_plan": "team"}
