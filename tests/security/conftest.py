"""The security suite's shared pieces: one settings object with every key, and who holds which."""

from __future__ import annotations

import pytest
from security_keys import KEYS, SECRET

from streams.settings import Settings


@pytest.fixture
def settings(tmp_path) -> Settings:
    """A deployment with every key set, unreachable Kafka and PostgreSQL (answers past auth are 503)."""
    (tmp_path / "segments").mkdir()
    (tmp_path / "segments" / "vip.yaml").write_text("id: vip\nmanual: true\n")
    return Settings(
        site_id="sec-site",
        secret_key=SECRET,
        rate_limit_per_second=0,
        browser_rate_limit_per_second=0,
        campaigns_dir=tmp_path,
        database_url="postgresql://nobody@127.0.0.1:1/none",
        cors_origins="https://shop.example",
        **KEYS,
    )


@pytest.fixture(scope="session")
def local_stack() -> None:
    """The local stack (Kafka, PostgreSQL, inbox), started if it is not running."""
    from deploy.local import stack

    stack.up()
