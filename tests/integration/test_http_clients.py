"""The official clients, installed fresh, pointed at a live Nudge over TLS with only their host
setting changed: each identify + track gives exactly one email at a real SMTP server.

Python: customerio (Track API v1 and its v2 batch), segment-analytics-python, rudder-sdk-python.
Node (package.json, installed by deploy/install.sh): customerio-node 4.x and 5.x (v1 and v2),
@segment/analytics-node, @rudderstack/rudder-sdk-node. A browser: Debian's chromium driven by
Playwright, a page on another origin loading analytics.js (npm's @segment/analytics-next) with
its `cdnURL` pointed at Nudge and the public browser key.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import subprocess
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from deploy.local import postgres
from deploy.local.runner import NudgeProcesses, delete_topics, free_port, nudge_env, wait_for
from streams.http.tls import dev_certificates

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
NODE_DRIVER = ROOT / "tests" / "node" / "clients.mjs"
ANALYTICS_JS = ROOT / "node_modules" / "@segment" / "analytics-next" / "dist" / "umd"
CHROMIUM = "/usr/bin/chromium"
PROJECT = {
    "campaigns/welcome.yaml": (
        "id: welcome\ntrigger: {event: signed_up}\nfilter: {attribute: email, exists: true}\n"
        "steps:\n  - send: welcome\n"
    ),
    "templates/welcome.html": "---\nsubject: Welcome\n---\n<p>Hi</p>\n",
}


@dataclass
class Inbox:
    """An SMTP server that records the recipients of every message it accepts."""

    received: list[str] = field(default_factory=list)

    async def handle_DATA(self, server, session, envelope):
        self.received.extend(envelope.rcpt_tos)
        return "250 2.0.0 accepted"

    def count(self, address: str) -> int:
        return sum(1 for r in self.received if r.lower() == address.lower())


@dataclass
class Deployment:
    processes: NudgeProcesses
    inbox: Inbox
    ca: Path
    page_origin: str

    @property
    def env(self) -> dict[str, str]:
        return self.processes.env

    @property
    def base_url(self) -> str:
        return self.processes.base_url


@pytest.fixture(scope="module")
def deployment(tmp_path_factory, kafka_bootstrap) -> Iterator[Deployment]:
    root = tmp_path_factory.mktemp("clients")
    for relative, text in PROJECT.items():
        path = root / "project" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    pair = dev_certificates(root / "tls")
    inbox = Inbox()
    smtp_port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    database = f"nudge_test_{uuid.uuid4().hex[:12]}"
    page_origin = f"http://127.0.0.1:{free_port()}"
    env = nudge_env(
        app_id=f"c{uuid.uuid4().hex[:10]}",
        database_url=postgres.create_database(database),
        smtp_url=f"smtp://127.0.0.1:{smtp_port}",
        data_dir=root / "data",
        campaigns_dir=root / "project",
        kafka_bootstrap=kafka_bootstrap,
    )
    env.update(NUDGE_TLS_CERT=str(pair.cert), NUDGE_TLS_KEY=str(pair.key), NUDGE_CORS_ORIGINS=page_origin)
    env["NUDGE_PUBLIC_URL"] = f"https://localhost:{env['NUDGE_HTTP_PORT']}"
    processes = NudgeProcesses(env, root / "logs")
    try:
        processes.start_api()
        processes.start_worker()
        yield Deployment(processes, inbox, pair.ca, page_origin)
    finally:
        processes.stop()
        controller.stop()
        delete_topics(kafka_bootstrap, env["NUDGE_APP_ID"])
        postgres.drop_database(database)


def person(client: str) -> dict[str, str]:
    tag = uuid.uuid4().hex[:8]
    name = "".join(c if c.isalnum() else "-" for c in client).strip("-")
    return {"person": f"{name}-{tag}", "email": f"{name}-{tag}@example.com"}


def outbox_rows(deployment: Deployment) -> list[tuple[str, str, str | None]]:
    """(recipient, status, last error) of every outbox row: what to look at when mail is missing."""
    from streams.database import connect

    async def rows() -> list[tuple[str, str, str | None]]:
        conn = await connect(deployment.env["NUDGE_DATABASE_URL"], deployment.env["NUDGE_APP_ID"])
        try:
            found = await conn.fetch("SELECT to_address, status, last_error FROM outbox")
            return [(r["to_address"], r["status"], r["last_error"]) for r in found]
        finally:
            await conn.close()

    return asyncio.run(rows())


def one_email_each(deployment: Deployment, people: dict[str, dict[str, str]]) -> dict[str, int]:
    """Wait until every person has an email, then give the count per client (1 is right)."""
    try:
        wait_for(lambda: all(deployment.inbox.count(p["email"]) for p in people.values()), 60,
                 what="one email per client")
    except TimeoutError as exc:
        raise AssertionError(f"{exc}; received {deployment.inbox.received}; outbox {outbox_rows(deployment)}") from exc
    # Give a duplicate the time it would need to arrive before counting.
    wait_for(lambda: True, 1)
    return {client: deployment.inbox.count(p["email"]) for client, p in people.items()}


# --- Python --------------------------------------------------------------------------------


def test_customerio_python_client_over_tls_with_only_host_and_port(deployment, monkeypatch):
    from customerio import track

    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(deployment.ca))
    env = deployment.env
    client = track.CustomerIO(site_id=env["NUDGE_SITE_ID"], api_key=env["NUDGE_API_KEY"],
                              host="localhost", port=int(env["NUDGE_HTTP_PORT"]), retries=0)
    v1, v2 = person("customerio-python"), person("customerio-python-v2")
    client.identify(v1["person"], email=v1["email"])
    client.track(v1["person"], "signed_up", {"plan": "trial"})
    client.batch([
        {"type": "person", "identifiers": {"id": v2["person"]}, "action": "identify",
         "attributes": {"email": v2["email"]}},
        {"type": "person", "identifiers": {"id": v2["person"]}, "action": "event", "name": "signed_up"},
    ])
    assert one_email_each(deployment, {"v1": v1, "v2": v2}) == {"v1": 1, "v2": 1}


@pytest.mark.parametrize("module", ["segment.analytics", "rudderstack.analytics"])
def test_segment_spec_python_clients_over_tls(deployment, monkeypatch, module):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(deployment.ca))
    sdk = importlib.import_module(module)
    errors: list[Exception] = []
    client = sdk.Client(deployment.env["NUDGE_SEGMENT_WRITE_KEY"], host=deployment.base_url, sync_mode=True,
                        on_error=lambda error, batch: errors.append(error))
    who = person(module)
    client.identify(who["person"], {"email": who["email"]})
    client.track(who["person"], "signed_up", {"plan": "trial"})
    client.flush()
    assert errors == []
    assert one_email_each(deployment, {module: who}) == {module: 1}


# --- Node ----------------------------------------------------------------------------------

NODE_CLIENTS = [
    "customerio-node@4",
    "customerio-node@5",
    "customerio-node@5 v2",
    "@segment/analytics-node",
    "@rudderstack/rudder-sdk-node",
]


def test_official_node_clients_over_tls_each_give_one_email(deployment):
    people = {client: person(client) for client in NODE_CLIENTS}
    env = {
        **os.environ,
        "NUDGE_URL": deployment.base_url,
        "NUDGE_SITE_ID": deployment.env["NUDGE_SITE_ID"],
        "NUDGE_API_KEY": deployment.env["NUDGE_API_KEY"],
        "NUDGE_SEGMENT_WRITE_KEY": deployment.env["NUDGE_SEGMENT_WRITE_KEY"],
        "NUDGE_CLIENTS": json.dumps(people),
        "NODE_EXTRA_CA_CERTS": str(deployment.ca),
    }
    done = subprocess.run(["node", str(NODE_DRIVER)], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout.strip().splitlines()[-1])
    assert {client: r["ok"] for client, r in results.items()} == dict.fromkeys(NODE_CLIENTS, True), results
    assert one_email_each(deployment, people) == dict.fromkeys(NODE_CLIENTS, 1)


def test_a_node_client_that_does_not_trust_the_certificate_is_refused(deployment):
    env = {**os.environ, "NUDGE_URL": deployment.base_url, "NUDGE_SITE_ID": "x", "NUDGE_API_KEY": "x",
           "NUDGE_SEGMENT_WRITE_KEY": "x", "NUDGE_CLIENTS": json.dumps({"customerio-node@5": person("x")})}
    env.pop("NODE_EXTRA_CA_CERTS", None)
    done = subprocess.run(["node", str(NODE_DRIVER)], env=env, capture_output=True, text=True, timeout=60)
    result = json.loads(done.stdout.strip().splitlines()[-1])["customerio-node@5"]
    assert result["ok"] is False and "certificate" in result["error"].lower()


# --- A browser -----------------------------------------------------------------------------

PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>shop</title>
<script src="/ajs/index.js"></script></head><body><script>
window.result = (async () => {
  const [analytics] = await AnalyticsNext.AnalyticsBrowser.load(
    { writeKey: WRITE_KEY, cdnURL: NUDGE_URL }, { retryQueue: false });
  const identified = await analytics.identify(PERSON, { email: EMAIL });
  const tracked = await analytics.track("signed_up", { plan: "trial" });
  return [identified, tracked].map((ctx) => ctx.failedDelivery() ? String(ctx.failedDelivery().reason) : "ok");
})().catch((error) => [String(error)]);
</script></body></html>"""


def serve_folder(root: Path, port: int) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", port), partial(SimpleHTTPRequestHandler, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture(scope="module")
def page_server(deployment, tmp_path_factory) -> Iterator[Path]:
    """The shop's own origin (another port than Nudge's), serving its page and analytics.js."""
    root = tmp_path_factory.mktemp("page")
    (root / "ajs").symlink_to(ANALYTICS_JS, target_is_directory=True)
    server = serve_folder(root, int(deployment.page_origin.rsplit(":", 1)[1]))
    yield root
    server.shutdown()
    server.server_close()


def run_page(origin: str, page_root: Path, name: str, values: dict[str, str]) -> list[str]:
    from playwright.async_api import async_playwright

    html = PAGE
    for key, value in values.items():
        html = html.replace(key, json.dumps(value))
    (page_root / f"{name}.html").write_text(html)

    async def drive() -> list[str]:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path=CHROMIUM,
                args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                      "--disable-component-update", "--disable-sync"],
            )
            try:
                # The local authority is not in chromium's store; the Node and Python tests check trust.
                context = await browser.new_context(ignore_https_errors=True)
                page = await context.new_page()
                await page.goto(f"{origin}/{name}.html")
                return await page.evaluate("window.result")
            finally:
                await browser.close()

    return asyncio.run(asyncio.wait_for(drive(), 90))


def page_values(deployment: Deployment, who: dict[str, str]) -> dict[str, str]:
    return {"WRITE_KEY": deployment.env["NUDGE_BROWSER_WRITE_KEY"], "NUDGE_URL": deployment.base_url,
            "PERSON": who["person"], "EMAIL": who["email"]}


def test_analytics_js_in_a_browser_on_another_origin_gives_one_email(deployment, page_server):
    who = person("analytics-js")
    assert run_page(deployment.page_origin, page_server, "allowed", page_values(deployment, who)) == ["ok", "ok"]
    assert one_email_each(deployment, {"analytics.js": who}) == {"analytics.js": 1}


def test_analytics_js_on_an_origin_outside_the_allow_list_sends_nothing(deployment, page_server):
    who = person("analytics-js-elsewhere")
    port = free_port()
    elsewhere = serve_folder(page_server, port)
    try:
        outcome = run_page(f"http://127.0.0.1:{port}", page_server, "elsewhere", page_values(deployment, who))
    finally:
        elsewhere.shutdown()
        elsewhere.server_close()
    assert outcome != ["ok", "ok"]
    wait_for(lambda: True, 2)
    assert deployment.inbox.count(who["email"]) == 0
