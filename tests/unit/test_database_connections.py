"""Every PostgreSQL connection comes from streams/database.py, so every one is scoped by app id."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OPENERS = re.compile(r"\basyncpg\s*\.\s*(connect|create_pool)\s*\(")
FOLDERS = ("agents", "bench", "deploy", "schemas", "streams", "tests")


def test_no_module_but_streams_database_opens_an_asyncpg_connection():
    offenders = [
        f"{path.relative_to(ROOT)}:{number}"
        for folder in FOLDERS
        for path in sorted((ROOT / folder).rglob("*.py"))
        if path != ROOT / "streams" / "database.py" and path != Path(__file__).resolve()
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if OPENERS.search(line)
    ]
    assert offenders == [], "open connections with streams.database (connect, create_pool, get_pool)"
