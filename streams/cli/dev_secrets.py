"""The secrets `nudge dev` runs with: made once at random, kept in the stack folder.

Outside `nudge dev` nothing is generated: the worker and the API refuse to start without
their secrets (`streams.settings.require_secrets`). A variable already set in the
environment wins over the kept value.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path

SECRETS_FILE = "dev-secrets.env"
# Each scope its own random key; NUDGE_SITE_ID is an id, not a secret, and keeps its default.
GENERATED = (
    "NUDGE_SECRET_KEY",
    "NUDGE_API_KEY",
    "NUDGE_READ_API_KEY",
    "NUDGE_SEND_API_KEY",
    "NUDGE_SEGMENT_WRITE_KEY",
    "NUDGE_BROWSER_WRITE_KEY",
)


def _read(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        name, sep, value = line.partition("=")
        if sep and name.strip() and not name.startswith("#"):
            values[name.strip()] = value.strip()
    return values


def dev_secrets(folder: Path) -> dict[str, str]:
    """The kept development secrets in `folder`, generating (and saving) any that are missing."""
    path = folder / SECRETS_FILE
    values = _read(path) if path.exists() else {}
    missing = [name for name in GENERATED if not values.get(name)]
    if missing:
        for name in missing:
            values[name] = secrets.token_urlsafe(32)
        folder.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        os.chmod(path, 0o600)
        path.write_text(
            "# Made by `nudge dev` for local development only; delete this file to make new ones.\n"
            + "".join(f"{name}={values[name]}\n" for name in GENERATED)
        )
    return {name: values[name] for name in GENERATED}


def dev_environment(environ: Mapping[str, str], folder: Path) -> dict[str, str]:
    """`environ` with the development secrets added where it sets none."""
    env = dict(environ)
    for name, value in dev_secrets(folder).items():
        if not env.get(name):
            env[name] = value
    return env
