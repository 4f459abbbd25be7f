"""Campaigns as code on Kubernetes: a project folder as the ConfigMaps the pods mount.

    python -m deploy.k8s.campaigns PROJECT_DIR | kubectl -n nudge apply -f -

One ConfigMap per folder (`nudge-campaigns`, `-segments`, `-templates`, `-computed`) and
`nudge-project` for the root files (`events.yaml`). Applying a change updates the mounted files in
place (within the kubelet's sync period, about a minute); workers reload changed campaigns and
templates on their own.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

import yaml

from schemas.errors import ConfigurationError

# Folder of the project -> ConfigMap name; the manifests mount each at /campaigns/<folder>.
FOLDERS = {
    "campaigns": "nudge-campaigns",
    "segments": "nudge-segments",
    "templates": "nudge-templates",
    "computed": "nudge-computed",
}
PROJECT = "nudge-project"
ROOT_FILES = ("events.yaml",)
# The API server refuses objects above 1 MiB; keep a margin for metadata.
MAX_BYTES = 1_000_000
_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")


class ConfigMapError(ConfigurationError, ValueError):
    """A project folder cannot be stored as ConfigMaps; the message says which file and why."""


def _data(files: list[Path], name: str) -> dict[str, str]:
    data: dict[str, str] = {}
    for path in files:
        if not _KEY.match(path.name):
            raise ConfigMapError(f"{path}: a ConfigMap key may hold only letters, digits, '-', '_' and '.'")
        try:
            data[path.name] = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise ConfigMapError(f"{path}: not UTF-8 text ({exc})") from exc
    size = sum(len(k) + len(v.encode()) for k, v in data.items())
    if size > MAX_BYTES:
        raise ConfigMapError(
            f"{name} would be {size:,} bytes; Kubernetes stores at most 1 MiB per ConfigMap: "
            f"split the folder or bake it into the image"
        )
    return data


def configmaps(project: Path, namespace: str = "nudge") -> list[dict[str, Any]]:
    """The ConfigMaps holding `project`'s campaigns, segments, templates, computed and root files."""
    if not project.is_dir():
        raise ConfigMapError(f"{project} is not a folder")
    found: list[dict[str, Any]] = []
    for folder, name in FOLDERS.items():
        path = project / folder
        entries = sorted(path.iterdir()) if path.is_dir() else []
        nested = [p for p in entries if p.is_dir()]
        if nested:
            raise ConfigMapError(
                f"{nested[0]}: ConfigMaps hold no subfolders; keep {folder}/ flat"
            )
        files = [p for p in entries if p.is_file() and not p.name.startswith(".")]
        found.append(_configmap(name, namespace, _data(files, name)))
    roots = [project / f for f in ROOT_FILES if (project / f).is_file()]
    data = _data(roots, PROJECT)
    # The pods mount events.yaml by name: an empty file when the project has none.
    for missing in ROOT_FILES:
        data.setdefault(missing, "")
    found.append(_configmap(PROJECT, namespace, data))
    return found


def _configmap(name: str, namespace: str, data: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace,
                     "labels": {"app.kubernetes.io/part-of": "nudge"}},
        "data": data,
    }


class _Dumper(yaml.SafeDumper):
    """Multi-line file contents as literal blocks, so the output reads like the files."""


def _text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    # PyYAML cannot write trailing spaces or tabs in a block: those stay quoted.
    literal = "\n" in value and not any(line != line.rstrip() for line in value.splitlines())
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if literal else None)


_Dumper.add_representer(str, _text)


def main(argv: list[str] | None = None) -> int:
    """Print the ConfigMaps of a project folder as one YAML stream."""
    parser = argparse.ArgumentParser(prog="python -m deploy.k8s.campaigns", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("project", type=Path, help="the folder holding campaigns/, templates/ ...")
    parser.add_argument("--namespace", default="nudge")
    args = parser.parse_args(argv)
    try:
        documents = configmaps(args.project, args.namespace)
    except ConfigMapError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    yaml.dump_all(documents, sys.stdout, Dumper=_Dumper, sort_keys=False, allow_unicode=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
