"""The console and the operator endpoints on the real stack: a worker and an API with the example
campaigns, JSON logs, and what a signup looks like on every page. No mocks."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy.local import postgres
from deploy.local.runner import NudgeProcesses, delete_topics, nudge_env, wait_for
from streams.console.client import ConsoleClient

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
USER, PASSWORD = "ops", "console-test-password"


@pytest.fixture(scope="module")
def nudge(tmp_path_factory, kafka_bootstrap: str, smtp_sink) -> Iterator[NudgeProcesses]:
    """A worker and an API on the repository's example campaigns, logging JSON."""
    tmp = tmp_path_factory.mktemp("console")
    app_id = f"c{uuid.uuid4().hex[:10]}"
    database = postgres.create_database(f"nudge_test_{app_id}")
    env = nudge_env(
        app_id=app_id, database_url=database, smtp_url=smtp_sink.url, data_dir=tmp / "data",
        campaigns_dir=ROOT, kafka_bootstrap=kafka_bootstrap,
    )
    env.update(NUDGE_CONSOLE_USER=USER, NUDGE_CONSOLE_PASSWORD=PASSWORD, NUDGE_LOG_FORMAT="json")
    processes = NudgeProcesses(env, tmp / "logs")
    try:
        processes.start_worker()
        processes.start_api()
        yield processes
    finally:
        processes.stop()
        delete_topics(kafka_bootstrap, app_id)
        postgres.drop_database(f"nudge_test_{app_id}")


class _Sink:
    """Accepts every message (the console reads the outbox; nobody reads these)."""

    async def handle_DATA(self, server, session, envelope):
        return "250 2.0.0 Message accepted"


@pytest.fixture(scope="module")
def smtp_sink():
    """One SMTP server on loopback for the module."""
    from aiosmtpd.controller import Controller

    from deploy.local.runner import free_port

    controller = Controller(_Sink(), hostname="127.0.0.1", port=free_port())
    controller.start()
    controller.url = f"smtp://127.0.0.1:{controller.port}"
    yield controller
    controller.stop()


@pytest.fixture(scope="module")
def console(nudge: NudgeProcesses) -> ConsoleClient:
    return ConsoleClient(nudge.base_url, USER, PASSWORD)


@pytest.fixture(scope="module")
def signed_up(nudge: NudgeProcesses, console: ConsoleClient) -> dict[str, str]:
    """Ana identifies and signs up; returns once the welcome email's message is in the outbox."""
    person = f"ana-{uuid.uuid4().hex[:6]}"
    assert nudge.request("PUT", f"/api/v1/customers/{person}", {"email": f"{person}@example.com", "first_name": "Ana"})[0] == 200
    assert nudge.request("POST", f"/api/v1/customers/{person}/events", {"name": "signed_up", "data": {"plan": "trial"}})[0] == 200

    def welcome_message() -> str | None:
        status, page = console.get_json(f"/messages?person={person}")
        return next((m["message_id"] for m in page["messages"] if m["template"] == "welcome" and m["status"] == "sent"), None) if status == 200 else None

    message_id = wait_for(welcome_message, 60, 0.3, "the welcome email to be sent")
    return {"person": person, "message_id": message_id}


def _get(url: str) -> tuple[int, str, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.headers.get("Content-Type", ""), response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("Content-Type", ""), exc.read().decode()


def test_the_worker_is_ready_once_its_partitions_are_assigned_and_restored(nudge):
    port = nudge.settings.worker_web_port
    status, _, body = _get(f"http://127.0.0.1:{port}/ready")
    assert status == 200, body
    checks = json.loads(body)["checks"]
    assert {name: check["ok"] for name, check in checks.items()} == {"kafka": True, "postgres": True, "partitions": True}
    assert _get(f"http://127.0.0.1:{port}/health")[0] == 200


def test_the_api_is_ready_when_kafka_and_postgresql_answer(nudge):
    status, _, body = _get(nudge.base_url + "/ready")
    assert status == 200, body
    assert set(json.loads(body)["checks"]) == {"kafka", "postgres"}


def test_worker_metrics_show_lag_per_partition_outbox_depth_and_no_personal_data(nudge, signed_up):
    status, content_type, body = _get(f"http://127.0.0.1:{nudge.settings.worker_web_port}/metrics")
    assert status == 200 and content_type.startswith("text/plain")
    input_topic = nudge.settings.input_topic
    for partition in range(nudge.settings.partitions):
        assert f'nudge_consumer_lag{{partition="{partition}",topic="{input_topic}"}}' in body
    assert 'nudge_outbox_messages{status="sent"}' in body
    assert signed_up["person"] not in body and "example.com" not in body


def test_the_activity_page_shows_the_signup_and_what_it_changed(console, signed_up):
    status, page = console.get_json(f"/activity?person={signed_up['person']}")
    assert status == 200
    kinds = [row["kind"] for row in page["rows"]]
    assert "identify" in kinds and "track" in kinds
    identify = next(r for r in page["rows"] if r["kind"] == "identify")
    assert identify["detail"]["attributes"]["first_name"] == [None, "Ana"]
    track = next(r for r in page["rows"] if r["kind"] == "track")
    assert any(j["campaign"] == "welcome" and j["event"] == "entered" for j in track["detail"]["journeys"])


def test_the_activity_feed_returns_only_newer_inputs(console, signed_up):
    _, page = console.get_json(f"/activity?person={signed_up['person']}")
    newest = page["rows"][0]["id"]
    status, feed = console.get_json(f"/activity/feed?after={newest}&person={signed_up['person']}")
    assert status == 200 and all(row["id"] > newest for row in feed["rows"])
    _, older = console.get_json(f"/activity/feed?after={newest - 1}&person={signed_up['person']}")
    assert [row["id"] for row in older["rows"]][-1] == newest


def test_the_person_page_has_attributes_journeys_and_messages(console, signed_up):
    status, page = console.get_json(f"/people/{signed_up['person']}")
    assert status == 200
    person = page["person"]
    assert person["profile"]["attributes"]["first_name"] == "Ana"
    assert [j["campaign_id"] for j in person["journeys"]] == ["welcome"]
    assert signed_up["message_id"] in [m["message_id"] for m in person["messages"]]


def test_searching_an_email_opens_the_person(console, signed_up):
    status, headers, _ = console.get(f"/search?q={signed_up['person']}@EXAMPLE.com")
    assert status == 303 and headers["Location"] == f"/people/{signed_up['person']}"


@pytest.mark.parametrize("form", ["{id}", "<{id}@localhost>"])
def test_a_message_id_finds_the_message_in_any_form(console, signed_up, form):
    text = urllib.parse.quote(form.format(id=signed_up["message_id"]))
    status, headers, _ = console.get(f"/search?q={text}")
    assert status == 303 and headers["Location"] == f"/messages/{signed_up['message_id']}"
    _, page = console.get_json(f"/messages?q={text}")
    assert [m["message_id"] for m in page["messages"]] == [signed_up["message_id"]]


def test_why_names_the_trigger_the_campaign_version_and_the_rendered_subject(console, signed_up):
    status, page = console.get_json(f"/messages/{signed_up['message_id']}")
    assert status == 200
    assert page["trigger"] == {"name": "signed_up", "properties": {"plan": "trial"}}
    assert page["message"]["campaign_id"] == "welcome" and page["message"]["campaign_version"]
    assert page["rendered"]["subject"] == "Welcome to Nudge, Ana!"
    assert [e["status"] for e in page["timeline"]][-1] == "sent"
    assert page["journey"]["milestones"][0]["event"] == "entered"


def test_the_email_preview_is_sandboxed_and_loads_nothing_remote(console, signed_up):
    status, headers, body = console.get(f"/messages/{signed_up['message_id']}/email")
    assert status == 200
    assert headers["Content-Security-Policy"].startswith("sandbox;")
    assert "img-src data:" in headers["Content-Security-Policy"]
    assert b"Your account is ready" in body


def test_the_campaign_page_draws_the_welcome_flow_with_its_counts(console, signed_up):
    status, page = console.get_json("/campaigns/welcome")
    assert status == 200
    assert [node["kind"] for node in page["flow"]] == ["send", "wait", "branch"]
    assert page["totals"]["entered"] >= 1
    sends = page["counts"]["0"]["sends"]
    assert sends[0]["template"] == "welcome" and sends[0]["sent"] >= 1


def test_the_other_pages_answer(console, signed_up):
    for path in ("/campaigns", "/segments", "/segments/inactive_trial", "/broadcasts", "/events", "/people"):
        status, _, body = console.get(path, "application/json")
        assert status == 200, (path, body[:2000])
    _, events = console.get_json("/events")
    assert "signed_up" in [e["event"] for e in events["events"]]


def test_logs_are_one_json_object_per_line(nudge, signed_up):
    for name in ("api.log", "worker-1.log"):
        lines = [line for line in (nudge.log_dir / name).read_text().splitlines() if line.strip()]
        assert lines, name
        parsed = [json.loads(line) for line in lines]
        assert all({"ts", "level", "logger", "message"} <= set(entry) for entry in parsed), name
