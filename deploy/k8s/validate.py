"""Validate the manifests with kubeconform against the Kubernetes schemas, offline.

The schemas come from the pinned PyPI package `kubernetes-validate` (its `-local-strict` JSON
schemas); kubeconform (pinned, built by deploy/install.sh with `go install`) needs them
self-contained, so `kubeconform_schemas` writes a copy whose references point at the local
`_definitions.json` instead of kubernetes.io.

    .venv/bin/python -m deploy.k8s.validate      # the manifests and the example campaigns
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from importlib.resources import files
from pathlib import Path

from deploy.local import cache_dir
from schemas.errors import ConfigurationError

KUBECONFORM_VERSION = "v0.7.0"
KUBERNETES_VERSION = "1.33.0"
HERE = Path(__file__).resolve().parent
# The files `kubectl apply -k` uses, plus the optional ones documented beside them.
MANIFESTS = ("namespace.yaml", "config.yaml", "migrate-job.yaml", "worker.yaml", "api.yaml",
             "delivery.yaml", "secret.example.yaml")


class ValidationError(ConfigurationError, RuntimeError):
    """kubeconform is missing or found invalid resources; the message holds its report."""


def kubeconform() -> Path:
    """The pinned kubeconform binary that deploy/install.sh builds into the cache."""
    path = cache_dir() / "bin" / f"kubeconform-{KUBECONFORM_VERSION}"
    if not path.exists():
        raise ValidationError(f"{path} is missing: run deploy/install.sh (it builds it with go install)")
    return path


def kubeconform_schemas(dest: Path, version: str = KUBERNETES_VERSION) -> Path:
    """Write kubeconform's schema tree for `version` under `dest`; return `dest`."""
    source = files("kubernetes_validate") / "kubernetes-json-schema" / f"v{version}-local-strict"
    target = dest / f"v{version}-standalone-strict"
    target.mkdir(parents=True, exist_ok=True)
    for entry in source.iterdir():
        if not entry.name.endswith(".json"):
            continue
        text = entry.read_text().replace('"/api/_definitions.json#', '"_definitions.json#')
        schema = json.loads(text)
        # Without its kubernetes.io $id, a reference resolves next to the file, not online.
        schema.pop("$id", None)
        (target / entry.name).write_text(json.dumps(schema))
    return dest


def validate(paths: list[Path], schemas: Path, version: str = KUBERNETES_VERSION) -> str:
    """Run kubeconform (strict) on `paths`; return its summary, raise ValidationError if any fails."""
    location = f"{schemas}/{{{{ .NormalizedKubernetesVersion }}}}-standalone{{{{ .StrictSuffix }}}}/" \
               "{{ .ResourceKind }}{{ .KindSuffix }}.json"
    result = subprocess.run(
        [str(kubeconform()), "-strict", "-summary", "-kubernetes-version", version,
         "-schema-location", location, *map(str, paths)],
        capture_output=True, text=True,
    )
    report = (result.stdout + result.stderr).strip()
    if result.returncode != 0:
        raise ValidationError(report)
    return report


def main() -> int:
    """Validate the manifests and the ConfigMaps of this repository's example campaigns."""
    import yaml

    from deploy.k8s.campaigns import _Dumper, configmaps

    with tempfile.TemporaryDirectory() as tmp:
        generated = Path(tmp) / "campaigns.yaml"
        generated.write_text(yaml.dump_all(configmaps(HERE.parent.parent), Dumper=_Dumper))
        try:
            print(validate([*(HERE / m for m in MANIFESTS), generated],
                           kubeconform_schemas(Path(tmp) / "schemas")))
        except ValidationError as exc:
            print(exc, file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
