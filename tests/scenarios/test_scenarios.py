"""Every scenario file is an executable specification: run it and hold it to its `expect` list."""

from __future__ import annotations

from pathlib import Path

import pytest

from agents.simulate.expectations import check_expectations
from agents.simulate.runner import run_scenario
from agents.simulate.scenario import load_scenario

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared" / "scenarios"


def _files() -> list[Path]:
    files = sorted((REPO / "scenarios").glob("*.yaml"))
    if SHARED.is_dir():
        files += sorted(SHARED.glob("*.yaml"))
    return files


@pytest.mark.parametrize(
    "path", _files(), ids=lambda p: f"{p.parent.parent.name}/{p.parent.name}/{p.name}"
)
def test_scenario_meets_its_expectations(path: Path) -> None:
    result = run_scenario(load_scenario(path))
    failures = [
        f"{check.description}: {check.happened}"
        for check in check_expectations(result)
        if not check.passed
    ]
    assert not failures, "\n".join(failures)
