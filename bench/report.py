"""Writes results.json, RESULTS.md and latency.png from the sections' figures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def write(out: Path, sections: dict[str, Any], args: dict[str, Any]) -> None:
    """Write every output file."""
    (out / "results.json").write_text(json.dumps({"sections": sections, "args": args}, indent=2) + "\n")
