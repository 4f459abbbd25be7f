"""The README documents every setting and the two quick-start commands that CI runs."""

import re
from pathlib import Path

from pydantic import SecretStr

from streams.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def _settings_table() -> list[tuple[list[str], list[str]]]:
    """The README's settings table: per row, its NUDGE_* names and its backticked defaults."""
    lines = README[README.index("| variable | default | what it is |"):].splitlines()[2:]
    rows = []
    for line in lines:
        if not line.startswith("|"):
            break
        names, default, _ = (cell.strip() for cell in line.strip("|").split("|"))
        rows.append((re.findall(r"`NUDGE_([A-Z0-9_]+)`", names), re.findall(r"`([^`]*)`", default)))
    return rows


def test_the_readme_settings_table_lists_exactly_the_settings():
    documented = [name.lower() for names, _ in _settings_table() for name in names]
    assert sorted(documented) == sorted(Settings.model_fields)


# Defaults the table describes in words rather than quotes.
DESCRIBED = {"secret_key", "unsubscribe_mailto"}


def test_the_readme_settings_table_shows_each_quoted_default():
    wrong = []
    for names, defaults in _settings_table():
        if len(names) != len(defaults):
            continue  # a row describing its defaults ("unset", "a development value")
        for name, shown in zip((n.lower() for n in names), defaults, strict=True):
            value = Settings.model_fields[name].default
            value = value.get_secret_value() if isinstance(value, SecretStr) else value
            if name in DESCRIBED:
                continue
            if isinstance(value, bool):
                matches = shown == str(value).lower()
            elif isinstance(value, (int, float)):
                matches = float(shown) == value
            else:
                matches = shown == str(value)
            if not matches:
                wrong.append(f"NUDGE_{name.upper()}: README says {shown!r}, the model {value!r}")
    assert wrong == []


def test_ci_runs_the_readme_test_command():
    command = "bash deploy/install.sh && .venv/bin/python -m pytest"
    assert command in README
    assert command in (ROOT / ".ci" / "run").read_text()
