"""Integration fixtures: the local stack, fresh migrated databases, in-process SMTP servers."""

from __future__ import annotations

import asyncio
import email
import email.policy
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path

import asyncpg
import pytest
from aiosmtpd.controller import Controller

from deploy.local.runner import NudgeProcesses, delete_topics, nudge_env
from streams.database import DEFAULT_APP_ID, create_pool


@pytest.fixture(scope="session")
def local_stack() -> None:
    """The local stack (Kafka, PostgreSQL, inbox), started if it is not running."""
    from deploy.local import stack

    stack.up()


@pytest.fixture(scope="session")
def kafka_bootstrap(local_stack: None) -> str:
    """The bootstrap address of the local stack's Kafka broker."""
    from deploy.local import kafka

    return kafka.BOOTSTRAP


@pytest.fixture(scope="session")
def database_url(local_stack: None) -> Iterator[str]:
    """A DSN to a fresh, migrated, empty database on the test server; dropped afterwards."""
    yield from _fresh_database()


@pytest.fixture
def fresh_database_url(local_stack: None) -> Iterator[str]:
    """Like `database_url`, but one database per test: for tests that run whole workers."""
    yield from _fresh_database()


def _fresh_database() -> Iterator[str]:
    from deploy.local import postgres

    name = f"nudge_test_{uuid.uuid4().hex[:12]}"
    yield postgres.create_database(name)
    postgres.drop_database(name)


@pytest.fixture
async def db_pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool on `database_url` (the default app id's schema) with the delivery-side tables emptied."""
    pool = await create_pool(database_url, DEFAULT_APP_ID, max_size=4)
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

    @property
    def url(self) -> str:
        """This server as a NUDGE_SMTP_URL."""
        return f"smtp://{self.host}:{self.port}"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        reply = self.rcpt_replies.get(address)
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
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


@pytest.fixture
def inbox(smtp_server: Callable[[], RecordingSmtp]) -> RecordingSmtp:
    """One recording SMTP server for a test that runs Nudge against it."""
    return smtp_server()


@pytest.fixture
def start_nudge(
    tmp_path: Path, kafka_bootstrap: str, fresh_database_url: str, inbox: RecordingSmtp
) -> Iterator[Callable[..., NudgeProcesses]]:
    """Start Nudge on a project made of `files` (path -> text), its own topics, db and inbox.

    `start_nudge(files, api=False)` runs only a worker; every process is stopped afterwards.
    """
    started: list[NudgeProcesses] = []

    def start(files: dict[str, str], *, api: bool = True) -> NudgeProcesses:
        project = tmp_path / "project"
        for relative, text in files.items():
            path = project / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        env = nudge_env(
            app_id=f"t{uuid.uuid4().hex[:10]}",
            database_url=fresh_database_url,
            smtp_url=inbox.url,
            data_dir=tmp_path / "data",
            campaigns_dir=project,
            kafka_bootstrap=kafka_bootstrap,
        )
        processes = NudgeProcesses(env, tmp_path / "logs")
        started.append(processes)
        if api:
            processes.start_api()
        processes.start_worker()
        return processes

    yield start
    for processes in started:
        processes.stop()
        delete_topics(kafka_bootstrap, processes.settings.app_id)


@pytest.fixture
def project() -> Callable[..., Awaitable[list]]:
    """`await project(pool, commands)`: write read-model commands through the projector's writer
    as one projections message (as if read off the topic); returns what it refused."""
    from agents.projector.batches import write_projections
    from agents.projector.plan import decode_message
    from schemas.wire import encode_commands

    async def write(pool: asyncpg.Pool, commands: list, source: str = "0:0") -> list:
        projections, refusals = decode_message(encode_commands(commands), source)
        return refusals + await write_projections(pool, projections)

    return write
