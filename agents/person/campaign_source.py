"""Where the worker's campaigns come from: the campaigns folder, with every version remembered.

Each campaign version the worker has ever loaded is stored in PostgreSQL (`campaign_versions`),
so a journey that entered an older version keeps running it after the file is edited, on this
worker or another. The folder is watched; an invalid edit is reported and the last good set kept.
"""

from __future__ import annotations

import logging
from pathlib import Path

import asyncpg
import orjson

from agents.person.campaign_files import load_definitions
from agents.person.campaign_set import CampaignSet, campaign_version
from schemas.campaigns import Campaign, CampaignFileError
from streams.database import connect
from streams.file_watch import Fingerprint, fingerprint
from streams.settings import Settings

log = logging.getLogger(__name__)


def folder_fingerprint(root: Path) -> Fingerprint:
    """Changes when a campaign, segment or computed-attribute file changes."""
    return fingerprint([root / sub for sub in ("campaigns", "segments", "computed")], "*.y*ml")


class CampaignSource:
    """Holds the current CampaignSet; `reload` swaps in a new one when the folder changes."""

    def __init__(self) -> None:
        self.current = CampaignSet.build([])
        self._fingerprint: Fingerprint | None = None

    async def reload(self, root: Path, settings: Settings) -> bool:
        """Load the folder if it changed since the last call; True when a new set is in place."""
        fingerprint = folder_fingerprint(root)
        if fingerprint == self._fingerprint:
            return False
        try:
            found = load_definitions(root)
            campaigns = found.campaigns
        except CampaignFileError as exc:
            if self._fingerprint is None:
                raise
            log.error("campaigns not reloaded, the last good set stays in use: %s", exc)
            self._fingerprint = fingerprint
            return False
        conn = await connect(settings.database_url, settings.app_id)
        try:
            await register_versions(conn, campaigns)
            previous = await known_versions(conn)
        finally:
            await conn.close()
        self.current = CampaignSet.build(campaigns, previous, found.segments, found.computed)
        self._fingerprint = fingerprint
        log.info(
            "campaigns loaded: %s",
            ", ".join(f"{c.id}@{campaign_version(c)}" for c in campaigns) or "none",
        )
        return True


async def register_versions(conn: asyncpg.Connection, campaigns: list[Campaign]) -> None:
    """Remember each campaign version (idempotent)."""
    await conn.executemany(
        """INSERT INTO campaign_versions (campaign_id, version, definition)
           VALUES ($1, $2, $3::jsonb) ON CONFLICT DO NOTHING""",
        [
            (c.id, campaign_version(c), c.model_dump_json(by_alias=True, exclude_defaults=True))
            for c in campaigns
        ],
    )


async def known_versions(conn: asyncpg.Connection) -> list[Campaign]:
    """Every campaign version ever registered."""
    rows = await conn.fetch("SELECT definition FROM campaign_versions")
    return [Campaign.model_validate(orjson.loads(r["definition"])) for r in rows]


campaign_source = CampaignSource()
