"""Every example in docs/campaigns.md runs: each YAML block is a scenario held to its expectations
(or, for the events.yaml format, a valid events file); each JSON Lines block is valid input."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from agents.check.event_schema import parse_event_schema
from agents.simulate.expectations import check_expectations
from agents.simulate.runner import run_scenario
from agents.simulate.scenario import parse_scenario
from schemas.wire import decode_inputs

DOC = Path(__file__).resolve().parents[2] / "docs" / "campaigns.md"
_BLOCK = re.compile(r"^```(\w+)\n(.*?)^```", re.DOTALL | re.MULTILINE)


def blocks(language: str) -> list[tuple[int, str]]:
    text = DOC.read_text()
    return [
        (text.count("\n", 0, m.start()) + 1, m.group(2))
        for m in _BLOCK.finditer(text) if m.group(1) == language
    ]


def test_the_reference_has_examples() -> None:
    assert len(blocks("yaml")) >= 25


@pytest.mark.parametrize(("line", "source"), blocks("yaml"), ids=lambda v: f"line {v}" if isinstance(v, int) else "")
def test_every_yaml_example_runs(line: int, source: str) -> None:
    raw = yaml.safe_load(source)
    if "events" in raw and "name" not in raw:
        parse_event_schema(raw, f"docs/campaigns.md:{line}")
        return
    scenario = parse_scenario(source, f"docs/campaigns.md:{line}")
    assert scenario.expect, f"the example at line {line} expects nothing"
    failures = [
        f"{c.description}: {c.happened}" for c in check_expectations(run_scenario(scenario)) if not c.passed
    ]
    assert not failures, f"docs/campaigns.md:{line}: " + "; ".join(failures)


@pytest.mark.parametrize(("line", "source"), blocks("jsonl"))
def test_every_recording_example_is_valid_input(line: int, source: str) -> None:
    for row in source.strip().splitlines():
        assert decode_inputs(row.encode())
