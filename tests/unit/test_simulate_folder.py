"""`nudge simulate --campaigns DIR`: scenario files run against the real project folder."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from streams.cli.simulate import simulate

CAMPAIGN = """\
id: welcome
trigger: {event: signed_up}
steps:
  - send: welcome
  - wait: 1d
  - branch:
      if: {segment: big_spenders}
      then: [{send: vip}]
      else: [{send: nudge}]
"""
TEMPLATE = "---\nsubject: Hi {{ customer.first_name | default: 'there' }}\n---\n<p>Spent {{ customer.spent }}</p>\n"
SCENARIO = """\
name: the folder's welcome
start: 2026-03-02T09:00:00Z
inputs:
  - {at: 0s, person: ana, identify: {email: ana@example.com, first_name: Ana}}
  - {at: 1m, person: ana, track: purchase, data: {amount: 150}}
  - {at: 2m, person: ana, track: signed_up}
expect:
  - {person: ana, send: welcome, at: 2m, contains: "Hi Ana"}
  - {person: ana, send: vip, at: 1d2m, contains: "Spent 150"}
  - {person: ana, never: nudge}
"""


def project(root: Path) -> Path:
    files = {
        "campaigns/welcome.yaml": CAMPAIGN,
        "segments/big.yaml": "id: big_spenders\nwhen: {attribute: spent, gte: 100}\n",
        "computed/spent.yaml": "id: spent\nevent: purchase\naggregate: sum\nproperty: amount\n",
        "templates/welcome.html": TEMPLATE,
        "templates/vip.html": TEMPLATE,
        "templates/nudge.html": TEMPLATE,
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def scenario(root: Path, text: str = SCENARIO) -> str:
    path = root / "scenario.yaml"
    path.write_text(text)
    return str(path)


def test_a_scenario_without_campaigns_runs_against_the_folder(tmp_path: Path) -> None:
    folder = project(tmp_path / "app")
    result = CliRunner().invoke(simulate, ["--campaigns", str(folder), scenario(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "3/3 expectations hold" in result.output
    assert f"definitions from {folder}" in result.output


def test_the_default_folder_is_nudge_campaigns_dir(tmp_path: Path) -> None:
    folder = project(tmp_path / "app")
    result = CliRunner().invoke(simulate, [scenario(tmp_path)], env={"NUDGE_CAMPAIGNS_DIR": str(folder)})
    assert result.exit_code == 0, result.output
    assert "3/3 expectations hold" in result.output


def test_totals_per_campaign_and_step_are_printed(tmp_path: Path) -> None:
    result = CliRunner().invoke(simulate, ["--campaigns", str(project(tmp_path / "app")), scenario(tmp_path)])
    assert "campaign welcome: entered 1, converted 0, exited 0, completed 1" in result.output
    assert "step 0        send welcome: 1" in result.output
    assert "step 2.0.0    send vip: 1" in result.output


def test_a_folder_path_in_the_scenario_names_the_option_to_use(tmp_path: Path) -> None:
    path = scenario(tmp_path, "name: x\nstart: 2026-03-02T09:00:00Z\ncampaigns: ./campaigns\n")
    result = CliRunner().invoke(simulate, [path])
    assert result.exit_code == 2
    assert "nudge simulate --campaigns DIR FILE" in result.output


def test_a_copy_of_a_folder_campaign_in_the_scenario_is_refused(tmp_path: Path) -> None:
    folder = project(tmp_path / "app")
    text = SCENARIO.replace("inputs:", "campaigns:\n  - {id: welcome, trigger: {event: x}}\ninputs:")
    result = CliRunner().invoke(simulate, ["--campaigns", str(folder), scenario(tmp_path, text)])
    assert result.exit_code == 2
    assert "the scenario defines campaigns 'welcome', which campaigns/ of" in result.output


def test_an_invalid_folder_names_each_file(tmp_path: Path) -> None:
    folder = project(tmp_path / "app")
    (folder / "campaigns/bad.yaml").write_text("id: bad\ntrigger: {evnt: x}\n")
    result = CliRunner().invoke(simulate, ["--campaigns", str(folder), scenario(tmp_path)])
    assert result.exit_code == 2
    assert "bad.yaml: trigger: not a trigger" in result.output


def test_a_scenario_event_events_yaml_does_not_declare_is_flagged(tmp_path: Path) -> None:
    folder = project(tmp_path / "app")
    (folder / "events.yaml").write_text("events:\n  signed_up: {}\n  purchase: {properties: {amount: number}}\n")
    text = SCENARIO.replace("track: signed_up}", "track: signed_upp}")
    result = CliRunner().invoke(simulate, ["--campaigns", str(folder), scenario(tmp_path, text)])
    assert "warning: inputs[2] (at 2m, ana): event 'signed_upp' is not declared in events.yaml" in result.output


def test_json_output_carries_totals(tmp_path: Path) -> None:
    result = CliRunner().invoke(simulate, ["--json", "--campaigns", str(project(tmp_path / "app")), scenario(tmp_path)])
    report = json.loads(result.output)[0]
    assert report["passed"] is True
    assert report["totals"]["welcome"]["entered"] == 1
