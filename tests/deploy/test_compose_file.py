"""docker-compose.yml: valid against the compose specification, and what a user needs from it."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from streams.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
CHECK = Path(sys.executable).with_name("check-jsonschema")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def _check(path: Path) -> subprocess.CompletedProcess[str]:
    # The compose spec's JSON schema ships inside check-jsonschema (pinned): no network.
    return subprocess.run([str(CHECK), "--builtin-schema", "vendor.compose-spec", str(path)],
                          capture_output=True, text=True, timeout=120)


def test_the_compose_file_matches_the_compose_specification() -> None:
    result = _check(COMPOSE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_specification_check_refuses_a_broken_file(tmp_path: Path) -> None:
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(COMPOSE.read_text().replace("    healthcheck:\n", "    healthchek:\n", 1))
    result = _check(broken)
    assert result.returncode != 0
    assert "healthchek" in result.stdout + result.stderr


def test_every_nudge_variable_is_a_documented_setting() -> None:
    readme = (ROOT / "README.md").read_text()
    settings = {f"NUDGE_{name.upper()}" for name in Settings.model_fields}
    used = set(re.findall(r"\bNUDGE_[A-Z_]+\b", COMPOSE.read_text())) - {"NUDGE_PROJECT_DIR"}
    assert used, "compose sets no NUDGE_ variable"
    assert sorted(used - settings) == []
    assert sorted(v for v in used | {"NUDGE_PROJECT_DIR"} if v not in readme) == []


def test_the_secret_key_and_api_key_must_be_set(compose: dict[str, Any]) -> None:
    env = compose["x-nudge"]["environment"]
    for name in ("NUDGE_SECRET_KEY", "NUDGE_API_KEY"):
        # ${VAR:?message}: compose refuses to start when the variable is unset or empty.
        assert re.fullmatch(rf"\$\{{{name}:\?.+\}}", env[name]), env[name]


def test_each_worker_has_its_own_data_volume(compose: dict[str, Any]) -> None:
    services = compose["services"]
    workers = [name for name, s in services.items() if s.get("command") == ["worker"]]
    assert sorted(workers) == ["worker", "worker-2"]
    assert services["worker-2"]["profiles"] == ["two-workers"]
    data = [next(v.split(":")[0] for v in services[w]["volumes"] if v.endswith(":/var/lib/nudge"))
            for w in workers]
    assert len(set(data)) == len(workers)
    assert set(data) <= set(compose["volumes"])


def test_every_long_running_service_has_a_healthcheck(compose: dict[str, Any]) -> None:
    services = compose["services"]
    missing = [n for n, s in services.items() if n != "migrate" and "healthcheck" not in s]
    assert missing == []
    for name in ("worker", "worker-2", "api"):
        assert "/ready" in " ".join(services[name]["healthcheck"]["test"])


def test_the_campaigns_folder_is_mounted_not_baked_in(compose: dict[str, Any]) -> None:
    for name in ("worker", "worker-2", "api", "migrate"):
        service = compose["services"][name]
        env = {**compose["x-nudge"]["environment"], **service.get("environment", {})}
        assert env["NUDGE_CAMPAIGNS_DIR"] == "/campaigns"
        assert "${NUDGE_PROJECT_DIR:-.}:/campaigns:ro" in service["volumes"]
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    assert "COPY campaigns" not in dockerfile and "NUDGE_CAMPAIGNS_DIR=/campaigns" in dockerfile
