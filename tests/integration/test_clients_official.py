"""The official client libraries, unchanged, pointed at Nudge: what they send lands on the topic.

Each test runs only where its client is importable (the clients are not Nudge dependencies):
`pip install --target DIR customerio segment-analytics-python rudder-sdk-python` and put DIR
on PYTHONPATH.
"""

from __future__ import annotations

import uuid

import pytest

# The API process fixture and the topic reader of the HTTP integration tests (same folder).
from test_http_ingestion import WRITE_KEY, topic_inputs
from test_http_ingestion import api as api_process  # noqa: F401 - a fixture

pytestmark = pytest.mark.integration


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


def test_customerio_python_client(api_process):
    track = pytest.importorskip("customerio.track")
    env = api_process.env
    client = track.CustomerIO(site_id=env["NUDGE_SITE_ID"], api_key=env["NUDGE_API_KEY"], retries=0)
    # The client only builds https URLs from `host`; the local API speaks plain http.
    client.base_url = api_process.base_url + "/api/v1"
    ana, old, cookie = unique("ana"), unique("ana-old"), unique("cookie")
    client.identify(ana, email="ana@example.com", created_at=1700000000)
    client.track(ana, "signed_up", {"plan": "trial"}, id="ev-1", timestamp=1700000001)
    client.pageview(ana, "/pricing", referrer="ad")
    client.track_anonymous(cookie, "viewed_pricing")
    client.add_device(ana, "tok/1", "ios", last_used=1700000002)
    client.delete_device(ana, "tok/1")
    client.suppress(ana)
    client.unsuppress(ana)
    client.merge_customers("id", ana, "id", old)
    client.delete(ana)

    found = topic_inputs(api_process, {ana, old, "anon:" + cookie}, 10)
    # Order holds per person (per partition), not across people.
    assert sorted((i.kind, i.person) for i in found if i.person != ana) == [
        ("merge_into", old),
        ("track", "anon:" + cookie),
    ]
    mine = [i for i in found if i.person == ana]
    assert [i.kind for i in mine] == ["identify", "track", "track", "devices", "devices", "suppress", "suppress", "delete"]
    assert mine[0].attributes == {"email": "ana@example.com", "created_at": 1700000000}
    assert (mine[1].name, mine[1].event_id, mine[1].at) == ("signed_up", "ev-1", 1700000001.0)
    assert (mine[2].type, mine[2].name) == ("page", "/pricing")
    assert (mine[3].action, mine[3].device_id, mine[4].action, mine[4].device_id) == ("add", "tok/1", "remove", "tok/1")


@pytest.mark.parametrize(
    "module", ["segment.analytics", "rudderstack.analytics"], ids=["segment", "rudderstack"]
)
def test_segment_spec_python_clients(api_process, module):
    sdk = pytest.importorskip(module)
    errors: list[Exception] = []
    client = sdk.Client(
        WRITE_KEY,
        host=api_process.base_url,
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
    found = topic_inputs(api_process, {ana, cookie}, 6)
    merged = [i for i in found if i.person == cookie]
    assert [(i.kind, i.into) for i in merged] == [("merge_into", ana)]
    mine = [i for i in found if i.person == ana]
    assert [i.kind for i in mine] == ["identify", "track", "track", "track", "identify"]
    assert (mine[0].attributes["plan"], mine[0].anonymous_id) == ("pro", cookie)
    assert (mine[1].name, mine[1].event_id, mine[1].data) == ("Signed Up", "m-1", {"source": "ad"})
    assert (mine[2].type, mine[2].name) == ("page", "Pricing")
    assert (mine[3].type, mine[3].name) == ("screen", "Home")
    assert mine[4].attributes == {"group_id": "acme", "group_plan": "team"}
