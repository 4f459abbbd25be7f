"""Every test file that needs the real stack says so, so `-m "not integration"` runs only pure tests."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
STACK_FOLDERS = ("integration", "faults", "browser", "security")
# Files in those folders that start nothing (their tests are pure), by name.
PURE = {"test_counting.py", "test_attacks.py", "test_scoped_keys.py", "test_secrets.py"}


def _marks_integration(path: Path) -> bool:
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "pytestmark" for t in node.targets):
            return "integration" in ast.unparse(node.value)
    return False


@pytest.mark.parametrize("folder", STACK_FOLDERS)
def test_every_test_file_that_needs_the_stack_carries_the_integration_marker(folder: str) -> None:
    files = sorted((TESTS / folder).glob("test_*.py"))
    unmarked = [f.name for f in files if f.name not in PURE and not _marks_integration(f)]
    assert unmarked == [], f"add `pytestmark = pytest.mark.integration` to: {', '.join(unmarked)}"
