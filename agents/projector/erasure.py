"""Erase people from every table of the deployment's schema (GDPR Art. 17), in one transaction.

Run by the projector when it meets a person's erased snapshot (`PersonSnapshot(deleted=True)`,
sent on delete, merge and suppress). What is personal goes: the profile, segment memberships,
activity, subscription choices; suppressions of addresses nobody else still has; the address,
render context and relay texts of their messages; the values their journeys' conditions saw.
What only counts stays, with the person's id replaced by `ERASED` (an id no input can carry):
message rows with their status (for per-step metrics and so a replayed send stays a no-op),
journey milestones and steps (for campaign metrics). Any table with a `person` column that
this module does not know is cleared of the person's rows.
"""

from __future__ import annotations

import asyncpg

# Person ids have at least one character, so no input can name this one.
ERASED = ""

# What is left of a relay's reply or an error text: its SMTP reply and enhanced status codes
# ("550 5.1.1"), never the address, name or message the relay put after them.
_CODES = r"^\d{3}(?: \d\.\d{1,3}\.\d{1,3})?"


def _redact(column: str) -> str:
    """SQL: the column's text reduced to its leading SMTP codes and `[erased]` (NULL stays NULL)."""
    return (
        f"CASE WHEN {column} IS NULL THEN NULL"
        f" ELSE concat_ws(' ', substring({column} from '{_CODES}'), '[erased]') END"
    )


# Provenance keys that say what a step did, never what it saw of the person (conditions with
# the values read, the causing input, attributes set are dropped): arms keep branch splits.
_KEPT_DETAIL_KEYS = ("arm", "template", "message_id", "sent", "until", "step")
_KEEP_DETAIL = (
    "(SELECT coalesce(jsonb_object_agg(d.key, d.value), '{}'::jsonb) FROM jsonb_each(detail) d"
    " WHERE d.key IN (" + ", ".join(f"'{key}'" for key in _KEPT_DETAIL_KEYS) + "))"
)

_ADDRESSES = """
SELECT lower(email) AS address FROM people WHERE person = ANY($1::text[]) AND email IS NOT NULL
UNION
SELECT lower(to_address) FROM outbox WHERE person = ANY($1::text[]) AND to_address IS NOT NULL
"""

_PERSON_TABLES = """
SELECT c.relname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p')
  AND a.attname = 'person' AND NOT a.attisdropped
ORDER BY c.relname
"""


async def addresses_of(conn: asyncpg.Connection, people: list[str]) -> list[str]:
    """Every address the read side holds for `people` (profile and messages), lower-cased."""
    return sorted(r["address"] for r in await conn.fetch(_ADDRESSES, people))


async def person_tables(conn: asyncpg.Connection) -> list[str]:
    """Every table of the deployment's schema with a `person` column, by name."""
    return [r["relname"] for r in await conn.fetch(_PERSON_TABLES)]


_STATEMENTS = [
    # Relay texts first: they are found through the outbox rows still naming the person.
    f"""UPDATE message_events e SET detail = {_redact('e.detail')}
        FROM outbox o WHERE o.message_id = e.message_id AND o.person = ANY($1::text[])""",
    # Mail not yet sent to an erased person must never go out.
    """UPDATE outbox SET status = 'failed', last_error = 'person erased', updated_at = now()
       WHERE person = ANY($1::text[]) AND status IN ('queued', 'sending')""",
    f"""UPDATE outbox SET person = '{ERASED}', to_address = NULL, subject = NULL,
              command = (command - 'context') || jsonb_build_object('to', NULL, 'person', '{ERASED}'),
              last_error = CASE WHEN last_error = 'person erased' THEN last_error
                                ELSE {_redact('last_error')} END,
              smtp_response = {_redact('smtp_response')}
       WHERE person = ANY($1::text[])""",
    "DELETE FROM people WHERE person = ANY($1::text[])",
    "DELETE FROM segment_members WHERE person = ANY($1::text[])",
    "DELETE FROM activity WHERE person = ANY($1::text[])",
    "DELETE FROM subscription_preferences WHERE person = ANY($1::text[])",
    f"""UPDATE journey_events SET person = '{ERASED}', detail = {_KEEP_DETAIL}
        WHERE person = ANY($1::text[])""",
    f"""UPDATE journey_steps SET person = '{ERASED}', detail = {_KEEP_DETAIL}
        WHERE person = ANY($1::text[])""",
    # A broadcast scan's checkpoint is a person id: a running scan restarts its partition
    # (outbox ids make the repeated sends no-ops), a finished one no longer needs it.
    "UPDATE broadcast_progress SET last_key = NULL WHERE last_key = ANY($1::text[])",
]

# Tables the statements above handle (their `person` column is erased or anonymised there).
_HANDLED = {
    "people", "segment_members", "activity", "subscription_preferences", "outbox",
    "journey_events", "journey_steps", "current_journeys",
}

# The core ends running journeys itself; this only makes sure none is left waiting.
_END_JOURNEYS = f"""
UPDATE current_journeys SET person = '{ERASED}',
       status = CASE WHEN status = 'active' THEN 'exited' ELSE status END,
       end_reason = CASE WHEN status = 'active' THEN 'person erased' ELSE end_reason END,
       ended_at = CASE WHEN status = 'active' THEN now() ELSE ended_at END,
       position = NULL, resume_at = NULL
WHERE person = ANY($1::text[])
"""

_UNSHARED_SUPPRESSIONS = """
DELETE FROM suppressions s
WHERE s.address = ANY($1::text[])
  AND NOT EXISTS (SELECT 1 FROM people p
                  WHERE lower(p.email) = s.address AND p.person <> ALL($2::text[]))
"""



async def erase_people(conn: asyncpg.Connection, people: list[str]) -> None:
    """Erase `people` inside the caller's transaction (never refused: no value of theirs is written)."""
    if not people:
        return
    addresses = await addresses_of(conn, people)
    for statement in _STATEMENTS:
        await conn.execute(statement, people)
    await conn.execute(_END_JOURNEYS, people)
    if addresses:
        await conn.execute(_UNSHARED_SUPPRESSIONS, addresses, people)
    for table in await person_tables(conn):
        if table not in _HANDLED:
            await conn.execute(f'DELETE FROM "{table}" WHERE person = ANY($1::text[])', people)
