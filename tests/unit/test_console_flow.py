"""A campaign drawn as a flow: nodes carry the decision core's step paths."""

from __future__ import annotations

import yaml

from agents.person import step_paths
from agents.person.ids import path_text
from schemas.campaigns import Campaign
from streams.console.flow import campaign_flow, campaign_summary, spec_text, walk

WELCOME = Campaign.model_validate(yaml.safe_load("""
id: welcome
trigger: {event: signed_up}
filter: {attribute: email, exists: true}
exit: {event: upgraded_plan}
goal: {event: upgraded_plan, within: 14d}
steps:
  - send: welcome
  - wait: 48h
  - branch:
      if: {event: created_project, since: entry}
      then: [{send: first_project_tips}]
      else: [{send: getting_started}, {wait: 1d}]
  - random:
      - {percent: 50, steps: [{send: a}]}
      - {percent: 50, steps: []}
"""))


def test_each_node_has_the_path_the_engine_records() -> None:
    nodes = walk(campaign_flow(WELCOME))
    assert [(n.path, n.kind) for n in nodes] == [
        ("0", "send"), ("1", "wait"), ("2", "branch"), ("2.0.0", "send"), ("2.1.0", "send"),
        ("2.1.1", "wait"), ("3", "random"), ("3.0.0", "send"),
    ]
    for node in nodes:
        path = [int(p) for p in node.path.split(".")]
        assert step_paths.step_at(WELCOME.steps, path) is not None
        assert path_text(path) == node.path


def test_branches_are_labelled_with_their_condition_and_arms() -> None:
    branch = campaign_flow(WELCOME)[2]
    assert branch.label == "if {event: created_project, since: entry}"
    assert [a.label for a in branch.arms] == ["then", "else"]
    assert [a.label for a in campaign_flow(WELCOME)[3].arms] == ["50%", "50%"]


def test_waits_and_windows_show_durations_as_written_units() -> None:
    assert campaign_flow(WELCOME)[1].label == "wait 2d"
    assert spec_text({"within": 1209600.0, "event": "x"}) == "{within: 14d, event: x}"


def test_the_summary_names_trigger_filter_exit_and_goal() -> None:
    summary = campaign_summary(WELCOME)
    assert summary["trigger"] == "{event: signed_up}"
    assert summary["filter"] == "{attribute: email, exists: true}"
    assert summary["exit"] == "{event: upgraded_plan}"
    assert "within: 14d" in summary["goal"]
