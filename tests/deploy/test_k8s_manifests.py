"""deploy/k8s: valid against the Kubernetes 1.33 schemas (kubeconform), and wired together."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from deploy.k8s import campaigns
from deploy.k8s.validate import HERE, MANIFESTS, ValidationError, kubeconform_schemas, validate
from streams.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def schemas(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return kubeconform_schemas(tmp_path_factory.mktemp("k8s-schemas"))


@pytest.fixture(scope="module")
def resources() -> list[dict[str, Any]]:
    found = []
    for name in MANIFESTS:
        found += [doc for doc in yaml.safe_load_all((HERE / name).read_text()) if doc]
    return found


def _pod_specs(resources: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["metadata"]["name"]: r["spec"]["template"]["spec"] for r in resources
            if r["kind"] in ("Deployment", "StatefulSet", "Job")}


def test_the_manifests_and_campaign_configmaps_pass_kubeconform(schemas: Path, tmp_path: Path) -> None:
    generated = tmp_path / "campaigns.yaml"
    generated.write_text(yaml.dump_all(campaigns.configmaps(ROOT), Dumper=campaigns._Dumper))
    report = validate([*(HERE / m for m in MANIFESTS), generated], schemas)
    assert "Valid: 17, Invalid: 0, Errors: 0, Skipped: 0" in report, report


def test_kubeconform_refuses_an_invalid_manifest(schemas: Path, tmp_path: Path) -> None:
    broken = tmp_path / "worker.yaml"
    broken.write_text((HERE / "worker.yaml").read_text().replace("containerPort: 6066", "containerPort: web"))
    with pytest.raises(ValidationError, match="containerPort"):
        validate([broken], schemas)


def test_kustomization_lists_existing_files_and_leaves_out_the_secret() -> None:
    kustomization = yaml.safe_load((HERE / "kustomization.yaml").read_text())
    listed = kustomization["resources"]
    assert all((HERE / name).is_file() for name in listed)
    assert "secret.example.yaml" not in listed
    assert set(listed) | {"secret.example.yaml", "delivery.yaml"} == set(MANIFESTS)


def test_workers_keep_state_on_a_volume_each_and_are_probed(resources: list[dict[str, Any]]) -> None:
    worker = next(r for r in resources if r["kind"] == "StatefulSet")
    config = next(r for r in resources if r["kind"] == "ConfigMap")["data"]
    claim = worker["spec"]["volumeClaimTemplates"][0]["metadata"]["name"]
    container = worker["spec"]["template"]["spec"]["containers"][0]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts[claim] == config["NUDGE_DATA_DIR"]
    assert config["NUDGE_WORKER_WEB_HOST"] == "0.0.0.0"
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    assert int(config["NUDGE_PARTITIONS"]) >= worker["spec"]["replicas"]


def test_the_api_is_probed_on_health_and_ready(resources: list[dict[str, Any]]) -> None:
    api = _pod_specs(resources)["nudge-api"]["containers"][0]
    assert (api["livenessProbe"]["httpGet"]["path"], api["readinessProbe"]["httpGet"]["path"]) == ("/health", "/ready")


def test_every_container_requests_resources(resources: list[dict[str, Any]]) -> None:
    for name, spec in _pod_specs(resources).items():
        for container in spec["containers"]:
            assert {"cpu", "memory"} <= set(container["resources"]["requests"]), name
            assert "memory" in container["resources"]["limits"], name


def test_every_referenced_configmap_and_secret_key_exists(resources: list[dict[str, Any]]) -> None:
    configmaps = {r["metadata"]["name"] for r in resources if r["kind"] == "ConfigMap"}
    configmaps |= {c["metadata"]["name"] for c in campaigns.configmaps(ROOT)}
    secret = next(r for r in resources if r["kind"] == "Secret")
    for name, spec in _pod_specs(resources).items():
        for volume in spec.get("volumes", []):
            if "configMap" in volume:
                assert volume["configMap"]["name"] in configmaps, (name, volume)
        for container in spec["containers"]:
            for source in container.get("envFrom", []):
                assert source["configMapRef"]["name"] in configmaps
            for env in container.get("env", []):
                ref = env["valueFrom"]["secretKeyRef"]
                assert ref["name"] == secret["metadata"]["name"]
                assert ref["key"] == env["name"] and ref["key"] in secret["stringData"]


def test_every_variable_set_is_a_nudge_setting(resources: list[dict[str, Any]]) -> None:
    settings = {f"NUDGE_{name.upper()}" for name in Settings.model_fields}
    keys = set()
    for r in resources:
        if r["kind"] == "ConfigMap":
            keys |= set(r["data"])
        if r["kind"] == "Secret":
            keys |= set(r["stringData"])
    assert sorted(keys - settings) == []


def test_campaign_configmaps_hold_the_project_files_as_they_are(tmp_path: Path) -> None:
    (tmp_path / "campaigns").mkdir()
    (tmp_path / "campaigns" / "welcome.yaml").write_text("id: welcome\nsteps:\n  - send: hi  \n")
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "hi.html").write_text("---\nsubject: Hi ✓\n---\n<p>{{ customer.name }}</p>\n")
    documents = yaml.safe_load_all(yaml.dump_all(campaigns.configmaps(tmp_path), Dumper=campaigns._Dumper))
    by_name = {d["metadata"]["name"]: d["data"] for d in documents}
    assert by_name["nudge-campaigns"] == {"welcome.yaml": "id: welcome\nsteps:\n  - send: hi  \n"}
    assert by_name["nudge-templates"]["hi.html"].startswith("---\nsubject: Hi ✓")
    assert by_name["nudge-segments"] == {} and by_name["nudge-computed"] == {}
    assert by_name["nudge-project"] == {"events.yaml": ""}


def test_a_campaign_subfolder_is_refused_with_its_path(tmp_path: Path) -> None:
    (tmp_path / "templates" / "layouts").mkdir(parents=True)
    with pytest.raises(campaigns.ConfigMapError, match=r"layouts.*keep templates/ flat"):
        campaigns.configmaps(tmp_path)


def test_a_folder_too_large_for_a_configmap_is_refused(tmp_path: Path) -> None:
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "big.html").write_text("x" * 1_100_000)
    with pytest.raises(campaigns.ConfigMapError, match=r"nudge-templates .* at most 1 MiB"):
        campaigns.configmaps(tmp_path)
