"""The sender agent's work, without Faust: store a batch of send commands in the outbox.

The caller commits the batch's Kafka offsets only after `store_sends` returns, so whatever
the crash point a command is either in the outbox or read again (and then skipped by the
primary key). PostgreSQL being unreachable is waited out, never skipped; a command PostgreSQL
refuses (a NUL byte, a lone surrogate: state written before ingestion refused them) is stored
with those characters replaced, or, if it still cannot be stored, handed back with the reason
for the dead-letter topic, while the rest of the batch goes in.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from agents.sender import outbox
from schemas.commands import SendEmail
from streams import metrics
from streams.database import DatabaseUnavailable
from streams.retry import retry

log = logging.getLogger(__name__)

_UNREACHABLE = (*outbox.DATABASE_UNREACHABLE, DatabaseUnavailable)

PoolFactory = Callable[[], Awaitable[asyncpg.Pool]]


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        if "\x00" in value or not _encodable(value):
            return value.replace("\x00", "\ufffd").encode("utf-8", "replace").decode("utf-8")
        return value
    if isinstance(value, dict):
        return {_clean(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def storable(command: SendEmail) -> SendEmail:
    """The command with characters PostgreSQL cannot store (NUL, lone surrogates) replaced by U+FFFD."""
    return SendEmail.model_validate(_clean(command.model_dump(mode="python")))


async def _insert_until_done(pool: PoolFactory, commands: list[SendEmail]) -> int:
    async def insert() -> int:
        return await outbox.insert_sends(await pool(), commands)

    return await retry(insert, f"outbox unreachable, {len(commands)} sends wait", on=_UNREACHABLE,
                       first=0.2, cap=5.0, log=log)


async def store_sends(pool: PoolFactory, commands: list[SendEmail]) -> list[tuple[SendEmail, str]]:
    """Insert `commands` into the outbox; return the ones PostgreSQL refused, with the reason.

    `pool` gives the connection pool (it may not exist yet while PostgreSQL is down).
    """
    if not commands:
        return []
    try:
        inserted = await _insert_until_done(pool, commands)
        _count(len({c.message_id for c in commands}), inserted)
        return []
    except (asyncpg.PostgresError, ValueError) as exc:
        log.warning("the outbox refused a batch of %d sends (%s); storing them one by one", len(commands), exc)
    refused: list[tuple[SendEmail, str]] = []
    for command in commands:
        try:
            _count(1, await _insert_until_done(pool, [command]))
            continue
        except (asyncpg.PostgresError, ValueError) as exc:
            first = exc
        try:
            cleaned = storable(command)
            _count(1, await _insert_until_done(pool, [cleaned]))
            log.warning("send %s stored with characters PostgreSQL cannot hold replaced: %s",
                        command.message_id, first)
        except (asyncpg.PostgresError, ValueError) as exc:
            refused.append((command, f"the outbox refused the send: {exc}"))
    return refused


def _count(unique: int, inserted: int) -> None:
    if unique > inserted:
        metrics.DUPLICATE_DELIVERIES.inc(unique - inserted)
