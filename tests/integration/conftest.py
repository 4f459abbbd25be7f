"""Integration fixtures: a fresh migrated PostgreSQL database and in-process SMTP servers."""

from __future__ import annotations

import asyncio
import email
import email.policy
import os
import socket
import uuid
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import AsyncIterator, Callable, Iterator
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from aiosmtpd.controller import Controller

from streams.migrations import apply_migrations

ADMIN_URL = os.environ.get(
    "NUDGE_TEST_DATABASE_ADMIN_URL", "postgresql://nudge:nudge@127.0.0.1:15432/postgres"
)


def _with_database(dsn: str, name: str) -> str:
    return urlunsplit(urlsplit(dsn)._replace(path=f"/{name}"))


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """A DSN to a fresh, migrated, empty database on the test server; dropped afterwards."""
    name = f"nudge_test_{uuid.uuid4().hex[:12]}"

    async def create() -> str:
        try:
            admin = await asyncpg.connect(ADMIN_URL)
        except (OSError, asyncpg.PostgresError) as exc:
            pytest.fail(
                f"cannot reach the test PostgreSQL at {ADMIN_URL} ({exc}); start the local "
                "stack or set NUDGE_TEST_DATABASE_ADMIN_URL",
                pytrace=False,
            )
        try:
            await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()
        dsn = _with_database(ADMIN_URL, name)
        await apply_migrations(dsn)
        return dsn

    async def drop() -> None:
        admin = await asyncpg.connect(ADMIN_URL)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()

    dsn = asyncio.run(create())
    yield dsn
    asyncio.run(drop())


@pytest.fixture
async def db_pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool on `database_url` with the delivery-side tables emptied first."""
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=4)
    await pool.execute(
        "TRUNCATE outbox, message_events, journey_events, campaign_versions, activity"
    )
    yield pool
    await pool.close()


@dataclass
class ReceivedMail:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage


@dataclass
class RecordingSmtp:
    """An SMTP server's handler: records accepted mail; can be told to refuse."""

    host: str = "127.0.0.1"
    port: int = 0
    received: list[ReceivedMail] = field(default_factory=list)
    # Replies to the next DATA commands, first first ("451 4.3.0 Try later"); then 250.
    data_replies: list[str] = field(default_factory=list)
    # Address -> reply to its RCPT TO ("550 5.1.1 No such user").
    rcpt_replies: dict[str, str] = field(default_factory=dict)
    # Seconds to stall before answering DATA (a slow relay).
    data_delay: float = 0.0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        reply = self.rcpt_replies.get(address)
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        if self.data_delay:
            await asyncio.sleep(self.data_delay)
        if self.data_replies:
            reply = self.data_replies.pop(0)
            if not reply.startswith("2"):
                return reply
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.received.append(ReceivedMail(envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 2.0.0 Message accepted"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def smtp_server() -> Iterator[Callable[[], RecordingSmtp]]:
    """A factory of in-process SMTP servers on 127.0.0.1 (random port), stopped after the test."""
    controllers: list[Controller] = []

    def start() -> RecordingSmtp:
        handler = RecordingSmtp(port=_free_port())
        controller = Controller(handler, hostname=handler.host, port=handler.port)
        controller.start()
        controllers.append(controller)
        return handler

    yield start
    for controller in controllers:
        controller.stop()
