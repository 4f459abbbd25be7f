"""Lint and types are part of the suite, so `.ci/run` (the README's test command) runs them.

ruff's rules and mypy's strictness are in pyproject.toml; each exception there says why.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *command], cwd=ROOT, capture_output=True, text=True,
                          timeout=600, check=False)


def test_ruff_finds_nothing() -> None:
    result = _run("ruff", "check", "--no-cache", "--output-format", "concise", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_finds_nothing_strict_on_schemas_and_the_pure_core() -> None:
    result = _run("mypy")  # the files and the per-module strictness: [tool.mypy] in pyproject.toml
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_is_strict_on_every_pure_module_the_layer_test_lists() -> None:
    import tomllib

    from test_layers import PURE

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]
    strict = next(o for o in config["overrides"] if o.get("disallow_untyped_defs"))
    assert sorted(PURE - set(strict["module"])) == [], "add them to the strict override in pyproject.toml"
    assert "schemas.*" in strict["module"]
