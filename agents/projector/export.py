"""Everything the deployment's PostgreSQL holds on one person, as JSON (GDPR Art. 15 and 20).

Table by table: every row of every table with a `person` column (profile, segments, activity
with the inputs themselves, journeys and their steps, messages with the render context, choices),
the timelines of their messages, and the suppressions of their addresses. Generic on purpose:
a table added later with a `person` column is exported without a change here.
"""

from __future__ import annotations

from typing import Any

import asyncpg
import orjson

from agents.projector.erasure import addresses_of, person_tables
from streams.database import quote_identifier

_PRIMARY_KEY = """
SELECT a.attname FROM pg_index i
JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
WHERE i.indrelid = (quote_ident(current_schema()) || '.' || quote_ident($1))::regclass
  AND i.indisprimary
ORDER BY array_position(i.indkey, a.attnum)
"""


async def _rows(conn: asyncpg.Connection, table: str, where: str, *args: Any) -> list[dict[str, Any]]:
    keys = [r["attname"] for r in await conn.fetch(_PRIMARY_KEY, table)]
    order = " ORDER BY " + ", ".join(f"t.{quote_identifier(k)}" for k in keys) if keys else ""
    records = await conn.fetch(
        f"SELECT row_to_json(t)::text AS row FROM {quote_identifier(table)} t WHERE {where}{order}",
        *args,
    )
    return [orjson.loads(r["row"]) for r in records]


async def export_person(pool: asyncpg.Pool, person: str) -> dict[str, Any]:
    """`{"person": id, "tables": {table: [row, ...]}}`, tables by name, rows by primary key;
    tables holding nothing of theirs are left out."""
    async with pool.acquire() as conn, conn.transaction(readonly=True, isolation="repeatable_read"):
        tables: dict[str, list[dict[str, Any]]] = {}
        for table in await person_tables(conn):
            tables[table] = await _rows(conn, table, "t.person = $1", person)
        tables["message_events"] = await _rows(
            conn, "message_events",
            "t.message_id IN (SELECT message_id FROM outbox WHERE person = $1)", person,
        )
        tables["suppressions"] = await _rows(
            conn, "suppressions", "t.address = ANY($1::text[])", await addresses_of(conn, [person])
        )
    return {"person": person, "tables": {name: rows for name, rows in sorted(tables.items()) if rows}}
