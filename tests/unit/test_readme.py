"""The README documents every setting and the two quick-start commands that CI runs."""

from pathlib import Path

from streams.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def test_every_setting_is_documented_in_the_readme():
    missing = [f"NUDGE_{name.upper()}" for name in Settings.model_fields if f"NUDGE_{name.upper()}" not in README]
    assert missing == []


def test_ci_runs_the_readme_test_command():
    command = "bash deploy/install.sh && .venv/bin/python -m pytest"
    assert command in README
    assert command in (ROOT / ".ci" / "run").read_text()
