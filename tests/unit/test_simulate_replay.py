"""`nudge simulate --events FILE.jsonl`: a recorded input file replayed on a virtual clock."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from agents.person.campaign_set import CampaignSet
from agents.person.engine import decide
from agents.simulate.project import Project
from agents.simulate.replay import Recorded, replay
from agents.simulate.virtual_clock import VirtualClock
from schemas.campaigns import Campaign
from schemas.commands import SendEmail
from schemas.inputs import Identify, Track, Wake
from streams.cli.simulate import simulate

T0 = 1_772_442_000.0  # 2026-03-02T09:00:00Z

WELCOME = Campaign.model_validate({
    "id": "welcome", "trigger": {"event": "signed_up"},
    "steps": [{"send": "welcome"}, {"wait": "1d"}, {"send": "follow_up"}],
})


def lines(*inputs: dict) -> list[str]:
    return [json.dumps(i) for i in inputs]


def identify(person: str, at: float, **attributes) -> dict:
    return {"kind": "identify", "person": person, "at": at, "attributes": {"email": f"{person}@example.com", **attributes}}


def track(person: str, at: float, name: str, **data) -> dict:
    return {"kind": "track", "person": person, "at": at, "name": name, "data": data}


def folder(root: Path) -> Path:
    (root / "campaigns").mkdir(parents=True)
    (root / "templates").mkdir()
    (root / "campaigns/welcome.yaml").write_text(
        "id: welcome\ntrigger: {event: signed_up}\nsteps: [{send: welcome}, {wait: 1d}, {send: follow_up}]\n"
    )
    (root / "templates/welcome.html").write_text("---\nsubject: Welcome {{ customer.first_name }}\n---\n<p>hi</p>\n")
    (root / "templates/follow_up.html").write_text("---\nsubject: Day two\n---\n<p>{{ event.plan }}</p>\n")
    return root


def recording(root: Path, text: list[str]) -> str:
    path = root / "recording.jsonl"
    path.write_text("\n".join(text) + "\n")
    return str(path)


def test_a_recording_prints_each_persons_timeline_and_totals(tmp_path: Path) -> None:
    app = folder(tmp_path / "app")
    path = recording(tmp_path, lines(
        identify("ana", T0, first_name="Ana"), track("ana", T0 + 60, "signed_up", plan="trial"),
        identify("bo", T0, first_name="Bo"),
    ))
    result = CliRunner().invoke(simulate, ["--campaigns", str(app), "--events", path])
    assert result.exit_code == 0, result.output
    ana = result.output.split("== ana\n")[1].split("== totals")[0]
    assert "2026-03-02T09:01:00Z  send welcome (step 0)" in ana and "subject: Welcome Ana" in ana
    assert "2026-03-03T09:01:00Z  send follow_up (step 2)" in ana
    assert "== bo" not in result.output  # nothing happened to bo
    assert "campaign welcome: entered 1, converted 0, exited 0, completed 1" in result.output
    assert "replayed 3 inputs of 3 lines for 2 people" in result.output


def test_a_bad_line_is_named_and_the_rest_replays(tmp_path: Path) -> None:
    app = folder(tmp_path / "app")
    text = lines(identify("ana", T0, first_name="Ana")) + ['{"kind": "track", "person": "ana"}'] + lines(
        track("ana", T0 + 60, "signed_up", plan="pro"))
    result = CliRunner().invoke(simulate, ["--campaigns", str(app), "--events", recording(tmp_path, text)])
    assert result.exit_code == 0
    assert "recording.jsonl: line 2: " in result.output and "at: Field required" in result.output
    assert "send welcome (step 0)" in result.output


def test_envelopes_are_read_and_recorded_wakes_are_skipped(tmp_path: Path) -> None:
    app = folder(tmp_path / "app")
    envelope = json.dumps({"inputs": [identify("ana", T0, first_name="Ana"), track("ana", T0 + 1, "signed_up")]})
    wake = json.dumps({"kind": "wake", "person": "ana", "at": T0 + 2, "timer_id": "journey:x", "due": T0 + 2})
    result = CliRunner().invoke(simulate, ["--campaigns", str(app), "--events", recording(tmp_path, [envelope, wake])])
    assert "skipped 1 wake" in result.output
    timeline = result.output.split("== totals")[0]
    assert timeline.count("send follow_up") == 1


def test_until_bounds_the_clock_after_the_last_input(tmp_path: Path) -> None:
    app = folder(tmp_path / "app")
    path = recording(tmp_path, lines(identify("ana", T0, first_name="Ana"), track("ana", T0, "signed_up")))
    result = CliRunner().invoke(simulate, ["--campaigns", str(app), "--events", path, "--until", "12h"])
    assert "send welcome" in result.output and "send follow_up" not in result.output


def test_a_render_failure_is_shown_and_counted(tmp_path: Path) -> None:
    app = folder(tmp_path / "app")
    path = recording(tmp_path, lines(identify("ana", T0), track("ana", T0, "signed_up")))
    result = CliRunner().invoke(simulate, ["--campaigns", str(app), "--events", path])
    assert "render failed: template 'welcome' (subject) failed to render" in result.output
    assert "send welcome: 1 (1 failed to render)" in result.output


def test_events_yaml_warns_and_strict_mode_refuses(tmp_path: Path) -> None:
    app = folder(tmp_path / "app")
    (app / "events.yaml").write_text("events:\n  signed_up: {properties: {plan: string}}\n")
    path = recording(tmp_path, lines(identify("ana", T0, first_name="A"), track("ana", T0, "signed_up", seats=3)))
    lenient = CliRunner().invoke(simulate, ["--campaigns", str(app), "--events", path])
    assert "warning: event 'signed_up': property 'seats' is not declared in events.yaml" in lenient.output
    assert "send welcome" in lenient.output
    strict = CliRunner().invoke(simulate, ["--campaigns", str(app), "--events", path, "--strict-events"])
    assert "send welcome" not in strict.output and "1 refused by events.yaml" in strict.output


def test_json_output_lists_message_ids(tmp_path: Path) -> None:
    app = folder(tmp_path / "app")
    path = recording(tmp_path, lines(identify("ana", T0, first_name="Ana"), track("ana", T0, "signed_up")))
    report = json.loads(CliRunner().invoke(simulate, ["--campaigns", str(app), "--events", path, "--json"]).output)
    sends = [h for h in report["timelines"]["ana"] if h["kind"] == "send"]
    assert [len(s["message_id"]) for s in sends] == [32, 32]
    assert report["totals"]["welcome"]["completed"] == 1


def test_replay_sends_the_message_ids_the_shell_would(tmp_path: Path) -> None:
    """Each input decided at its own time, a wake at its due time: the live shell's ids."""
    campaigns = CampaignSet.build([WELCOME])
    inputs = [Identify(person="ana", at=T0, attributes={"email": "a@x.io"}), Track(person="ana", at=T0 + 5, name="signed_up")]
    report = replay([Recorded(line=1, inputs=tuple(inputs))], Project(campaigns=[WELCOME]), tail=2 * 86400, render=False)
    replayed = [h.message_id for h in report.timelines["ana"] if h.kind == "send"]
    # By hand, as the shell does it: decide each input at its `at`, the wake at its due time.
    state, ids = None, []
    for item in inputs:
        state, commands = decide(state, item, campaigns, item.at)
        ids += [c.message_id for c in commands if isinstance(c, SendEmail)]
    (timer, due), = state.timers.items()
    state, commands = decide(state, Wake(person="ana", at=due, timer_id=timer, due=due), campaigns, due)
    ids += [c.message_id for c in commands if isinstance(c, SendEmail)]
    assert replayed == ids and len(ids) == 2


def test_a_person_is_never_decided_before_their_previous_decision() -> None:
    seen: list[float] = []
    clock = VirtualClock(CampaignSet.build([WELCOME]), lambda now, item, commands: seen.append(now))
    clock.feed(Track(person="ana", at=T0 + 100, name="x"))
    clock.feed(Track(person="ana", at=T0 + 50, name="y"))  # a late event, out of order
    clock.feed(Track(person="bo", at=T0 + 10, name="x"))
    assert seen == [T0 + 100, T0 + 100, T0 + 10]


def test_timers_of_different_people_fire_in_due_order() -> None:
    fired: list[tuple[str, float]] = []
    clock = VirtualClock(
        CampaignSet.build([WELCOME]),
        lambda now, item, commands: fired.extend((c.person, now) for c in commands if isinstance(c, SendEmail)),
    )
    clock.feed(Track(person="bo", at=T0 + 10, name="signed_up"))
    clock.feed(Track(person="ana", at=T0, name="signed_up"))
    clock.run_until(T0 + 2 * 86400)
    assert fired == [("bo", T0 + 10), ("ana", T0), ("ana", T0 + 86400), ("bo", T0 + 86410)]


def test_a_recorded_merge_is_replayed_only_when_its_secondary_is_not_in_the_recording() -> None:
    from schemas.inputs import Absorb

    folded = {"person": "anon:a1", "first_seen": T0, "attributes": {"source": "ads"}}
    absorb = Absorb(person="ana", at=T0 + 10, source="anon:a1", state=folded)
    ana = Identify(person="ana", at=T0 + 5, attributes={"email": "a@x.io"})
    alone = replay([Recorded(1, (ana, absorb))], Project(campaigns=[WELCOME]))
    assert alone.skipped == {} and alone.inputs == 2
    anon = Track(person="anon:a1", at=T0, name="page")
    both = replay([Recorded(1, (anon, ana, absorb))], Project(campaigns=[WELCOME]))
    assert both.skipped == {"absorb": 1}
