"""The read side over HTTP and the CLI, end to end on the real stack: a team watches its inputs
arrive, sees the event catalog, a person's profile, campaign metrics and segment membership."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import pytest

from deploy.local.runner import wait_for

pytestmark = pytest.mark.integration

PROJECT = {
    "campaigns/welcome.yaml": "id: welcome\ntrigger: {event: signed_up}\nsteps:\n  - send: welcome\n",
    "segments/pro.yaml": "id: pro\nwhen: {attribute: plan, eq: pro}\n",
    "segments/vip.yaml": "id: vip\nmanual: true\n",
    "templates/welcome.html": "---\nsubject: Welcome\n---\n<p>Hi</p>\n",
}


@pytest.fixture
def nudge(start_nudge):
    return start_nudge(PROJECT)


def get(nudge, path: str):
    status, body = nudge.request("GET", path, key="read")
    assert status == 200, body
    return body


def cli(nudge, *args: str):
    """Run `nudge ARGS...` with the test's environment; its stdout parsed as JSON."""
    done = subprocess.run(
        [sys.executable, "-m", "streams.cli", *args], env=nudge.env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_inputs_over_http_show_in_the_activity_log_the_catalog_the_profile_and_the_metrics(nudge, inbox):
    assert nudge.request("PUT", "/api/v1/customers/ana", {"email": "ana@example.com", "plan": "pro"}) == (200, {})
    event = {"name": "signed_up", "data": {"source": "ads", "seats": 3}}
    assert nudge.request("POST", "/api/v1/customers/ana/events", event) == (200, {})

    def by_kind() -> dict[str, dict]:
        rows = get(nudge, "/api/v1/activity?person=ana")["activity"]  # newest first
        return {row["kind"]: row for row in reversed(rows)}

    activity = wait_for(lambda: {"identify", "track"} <= set(a := by_kind()) and a, 30, what="both inputs in the activity log")
    identify, track = activity["identify"], activity["track"]
    assert identify["id"] < track["id"]
    assert identify["kind"] == "identify"
    assert identify["detail"]["attributes"]["plan"] == [None, "pro"]
    assert identify["detail"]["segments"]["entered"] == ["pro"]
    assert track["kind"] == "track"
    # A one-step journey is entered and, its send queued, completed by the same input.
    assert [j["event"] for j in track["detail"]["journeys"]] == ["entered", "completed"]
    assert track["detail"]["messages"][0]["template"] == "welcome"
    assert "signed_up" in track["summary"] and "queued welcome" in track["summary"]

    # Later inputs (the delivery outcome) may have arrived since; the CLI shows the same rows.
    from_cli = {a["id"]: a for a in cli(nudge, "activity", "--person", "ana", "--json")}
    assert from_cli[track["id"]] == track and from_cli[identify["id"]] == identify

    [signed_up] = get(nudge, "/api/v1/events")["events"]
    assert (signed_up["event"], signed_up["type"], signed_up["count"]) == ("signed_up", "event", 1)
    assert {p["name"]: p["types"] for p in signed_up["properties"]} == {"seats": ["number"], "source": ["string"]}
    assert cli(nudge, "events", "--json")["events"][0]["properties"] == signed_up["properties"]

    wait_for(lambda: inbox.received, 30, what="the welcome email")
    profile = wait_for(
        lambda: (p := get(nudge, "/api/v1/customers/ana/profile"))["messages"]
        and p["messages"][0]["status"] == "sent" and p,
        15, what="the message to read sent in the profile",
    )
    assert profile["email"] == "ana@example.com" and profile["attributes"]["plan"] == "pro"
    assert [s["segment"] for s in profile["segments"]] == ["pro"]
    [message] = profile["messages"]
    assert message["template"] == "welcome" and message["campaign_id"] == "welcome"
    assert message["reason"], "every message says why it was sent"
    assert [e["status"] for e in message["timeline"]][:1] == ["queued"]
    assert [j["event"] for j in profile["journeys"]] == ["entered", "completed"]

    [welcome] = get(nudge, "/api/v1/campaigns/metrics")["campaigns"]
    assert (welcome["campaign_id"], welcome["entered"], welcome["in_progress"], welcome["completed"]) == ("welcome", 1, 0, 1)
    [step] = welcome["steps"]
    assert (step["template"], step["total"], step["sent"], step["failed"]) == ("welcome", 1, 1, 0)

    assert nudge.request("GET", "/api/v1/customers/nobody/profile", key="read")[0] == 404


def test_manual_segment_membership_changes_over_http_as_nudge_activity_follow_shows(nudge, inbox, tmp_path):
    nudge.request("PUT", "/api/v1/customers/ana", {"email": "ana@example.com"})
    nudge.request("PUT", "/api/v1/customers/bo", {"email": "bo@example.com"})
    out = (tmp_path / "follow.out").open("w+")
    follow = subprocess.Popen(
        [sys.executable, "-m", "streams.cli", "activity", "--follow", "--interval", "0.1", "--kind", "segment_membership"],
        env=nudge.env, stdout=out, stderr=subprocess.STDOUT, text=True,
    )
    try:
        wait_for(lambda: "SUMMARY" in (tmp_path / "follow.out").read_text(), 30, what="the follow header")
        assert nudge.request("POST", "/api/v1/segments/vip/add_customers", {"ids": ["ana", "bo"]}) == (200, {})
        wait_for(lambda: (tmp_path / "follow.out").read_text().count("added to segment vip") == 2, 30,
                 what="nudge activity --follow to print both additions")
    finally:
        follow.send_signal(signal.SIGINT)
        assert follow.wait(timeout=10) == 0, "Ctrl-C ends --follow cleanly"
        out.close()

    def members() -> list[str]:
        return [m["person"] for m in get(nudge, "/api/v1/segments/vip/members")["members"]]

    wait_for(lambda: members() == ["ana", "bo"], 30, what="ana and bo in vip")
    segments = {s["id"]: s for s in get(nudge, "/api/v1/segments")["segments"]}
    assert segments["vip"] == {"id": "vip", "members": 2, "defined": True, "manual": True}
    assert segments["pro"]["members"] == 0

    assert nudge.request("POST", "/api/v1/segments/vip/remove_customers", {"ids": ["ana"]}) == (200, {})
    wait_for(lambda: members() == ["bo"], 30, what="ana to leave vip")
    assert nudge.request("POST", "/api/v1/segments/pro/add_customers", {"ids": ["ana"]})[0] == 400

    assert nudge.request("POST", "/api/v1/broadcasts", {"campaign": "welcome", "segment": "vip", "dry_run": True}, key="send") == (
        200, {"dry_run": True, "members": 1},
    )
    status, started = nudge.request("POST", "/api/v1/broadcasts", {"campaign": "welcome", "segment": "vip"}, key="send")
    assert (status, started["members"]) == (202, 1)
    wait_for(lambda: get(nudge, f"/api/v1/broadcasts/{started['id']}")["done"], 30, what="the broadcast to finish")
    wait_for(lambda: [m.rcpt_tos for m in inbox.received] == [["bo@example.com"]], 30, what="the broadcast email to bo")
    assert nudge.request("GET", "/api/v1/broadcasts/b-nope", key="read")[0] == 404
