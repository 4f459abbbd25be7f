"""Read a scenario file into a `Scenario`; problems come out as CampaignFileError."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import ValidationError

from schemas.campaigns import CampaignFileError
from schemas.scenario import Scenario


def parse_scenario(text: str, name: str = "<scenario>") -> Scenario:
    """Validate scenario YAML; `name` is the file name used in error messages."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise CampaignFileError(name, [f"not valid YAML: {exc}"]) from exc
    if not isinstance(raw, dict):
        raise CampaignFileError(name, ["a scenario is a mapping with name, start, campaigns, inputs, expect"])
    try:
        return Scenario.model_validate(raw)
    except ValidationError as exc:
        raise CampaignFileError.from_validation(name, exc) from exc


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate one scenario file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CampaignFileError(str(path), [f"cannot read: {exc.strerror or exc}"]) from exc
    return parse_scenario(text, str(path))
