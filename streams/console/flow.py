"""A campaign drawn as a flow: its steps as a tree of nodes with the path each step runs under.

Pure: a `Campaign` (from its YAML) in, `FlowNode`s out. Paths are the decision core's
(`agents/person/step_paths.py`: step index, then arm index and step index inside the arm,
as text "2.0.1"), so the counts the read models keep per step path land on the right node.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from schemas.campaigns import (
    BranchStep,
    Campaign,
    ExitStep,
    RandomStep,
    SendStep,
    SetStep,
    SplitStep,
    Step,
    TimeWindowStep,
    WaitStep,
    WaitUntilStep,
    WebhookStep,
)
from schemas.durations import format_duration

# Fields of the campaign language that hold durations (seconds once parsed).
_DURATIONS = {"within", "for", "older_than", "within_last", "within_next", "max", "after", "offset", "wait"}


@dataclass
class FlowArm:
    """One way out of a branching step: its label and the steps down it."""

    label: str
    index: int
    steps: list[FlowNode]


@dataclass
class FlowNode:
    """One step: its path, kind, a one-line label and, for branching steps, its arms."""

    path: str
    kind: str
    label: str
    detail: str = ""
    template: str | None = None
    arms: list[FlowArm] = field(default_factory=list)


def spec_text(value: Any) -> str:
    """A condition or step body as compact YAML-like text: `{event: created_project, since: entry}`."""
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json", by_alias=True, exclude_defaults=True, exclude_none=True)
    return _text(value, None)


def _text(value: Any, key: str | None) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_text(v, k)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_text(v, key) for v in value) + "]"
    if key in _DURATIONS and isinstance(value, (int, float)) and not isinstance(value, bool):
        return format_duration(float(value))
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    return str(value)


def _node(step: Step, path: list[int]) -> FlowNode:
    text = ".".join(str(i) for i in path)
    if isinstance(step, SendStep):
        return FlowNode(text, "send", f"send {step.send}", template=step.send)
    if isinstance(step, WaitStep):
        return FlowNode(text, "wait", f"wait {format_duration(step.wait)}")
    if isinstance(step, WaitUntilStep):
        spec = step.wait_until
        return FlowNode(
            text, "wait_until", f"wait until {spec_text(spec.condition)}",
            detail=f"at most {format_duration(spec.max)}",
        )
    if isinstance(step, TimeWindowStep):
        return FlowNode(text, "time_window", "time window", detail=spec_text(step.time_window))
    if isinstance(step, SetStep):
        return FlowNode(text, "set", "set " + spec_text(step.set))
    if isinstance(step, WebhookStep):
        return FlowNode(text, "webhook", f"webhook {step.webhook.url}")
    if isinstance(step, ExitStep):
        return FlowNode(text, "exit", "exit")
    if isinstance(step, BranchStep):
        node = FlowNode(text, "branch", f"if {spec_text(step.branch.if_)}")
        node.arms = [
            FlowArm("then", 0, _nodes(step.branch.then, [*path, 0])),
            FlowArm("else", 1, _nodes(step.branch.else_, [*path, 1])),
        ]
        return node
    if isinstance(step, SplitStep):
        node = FlowNode(text, "split", "split: first case that holds")
        node.arms = [
            FlowArm(
                f"case {i + 1}: {spec_text(case.if_)}" if case.if_ is not None else "otherwise",
                i, _nodes(case.then, [*path, i]),
            )
            for i, case in enumerate(step.split)
        ]
        return node
    if isinstance(step, RandomStep):
        node = FlowNode(text, "random", "random cohorts")
        node.arms = [
            FlowArm(f"{cohort.percent:g}%", i, _nodes(cohort.steps, [*path, i]))
            for i, cohort in enumerate(step.random)
        ]
        return node
    return FlowNode(text, type(step).__name__.lower(), spec_text(step))


def _nodes(steps: list[Step], prefix: list[int]) -> list[FlowNode]:
    """The nodes of one arm's steps; `prefix` is the branching step's path and the arm index."""
    return [_node(step, [*prefix, i]) for i, step in enumerate(steps)]


def campaign_flow(campaign: Campaign) -> list[FlowNode]:
    """The campaign's steps as flow nodes, top level first."""
    return [_node(step, [i]) for i, step in enumerate(campaign.steps)]


def walk(nodes: list[FlowNode]) -> list[FlowNode]:
    """Every node of a flow, depth first."""
    out: list[FlowNode] = []
    for node in nodes:
        out.append(node)
        for arm in node.arms:
            out.extend(walk(arm.steps))
    return out


def campaign_summary(campaign: Campaign) -> dict[str, str]:
    """Trigger, filter, re-entry, exit and goal as one line each (missing ones left out)."""
    out: dict[str, str] = {}
    if campaign.trigger is not None:
        out["trigger"] = spec_text(campaign.trigger)
    if campaign.filter is not None:
        out["filter"] = spec_text(campaign.filter)
    out["reentry"] = spec_text(campaign.reentry)
    if campaign.exit is not None:
        out["exit"] = spec_text(campaign.exit)
    if campaign.goal is not None:
        out["goal"] = spec_text(campaign.goal)
    return out
