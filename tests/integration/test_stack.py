"""The local stack on the real services: Kafka, PostgreSQL and the development inbox. No mocks."""

from __future__ import annotations

import json
import os
import smtplib
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from click.testing import CliRunner

from deploy.local import inbox, kafka, postgres
from deploy.local import stack as local_stack
from streams.cli import cli
from streams.database import connect_server

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def running() -> local_stack.StackStatus:
    """The stack, started if needed; left running for the next test run."""
    return local_stack.up()


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def _wait_for_messages(base: str, to: str, count: int = 1, timeout: float = 10.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        found = _get_json(f"{base}/api/messages?limit=0&to={to}")
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _send(port: int, to: str, subject: str) -> str:
    message = EmailMessage()
    message["From"] = "Nudge Test <sender@example.test>"
    message["To"] = to
    message["Subject"] = subject
    message_id = f"<{uuid.uuid4().hex}@example.test>"
    message["Message-ID"] = message_id
    message["List-Unsubscribe"] = "<https://example.test/u/1>"
    message.set_content("Hello in plain text.\nSecond line.")
    message.add_alternative("<p>Hello in <b>HTML</b>.</p>", subtype="html")
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.send_message(message)
    return message_id


def test_up_is_idempotent(running: local_stack.StackStatus) -> None:
    assert running.running, running
    started = time.monotonic()
    again = local_stack.up()
    elapsed = time.monotonic() - started
    assert [s.action for s in again.services] == ["already running"] * 3
    assert [s.pid for s in again.services] == [s.pid for s in running.services]
    assert elapsed < 3.0, f"a second `up` took {elapsed:.1f}s; it should only check"


def test_status_reports_each_service(running: local_stack.StackStatus) -> None:
    current = local_stack.status()
    assert [s.name for s in current.services] == ["kafka", "postgres", "inbox"]
    assert current.running
    for service in current.services:
        assert service.pid and service.pid == running[service.name].pid
        assert service.log.exists(), service
    assert current["kafka"].address == "127.0.0.1:19092"
    assert current["postgres"].address == "127.0.0.1:15432"
    assert current.env()["NUDGE_DATABASE_URL"] == "postgresql://nudge:nudge@127.0.0.1:15432/nudge"

    result = CliRunner().invoke(cli, ["stack", "status"])
    assert result.exit_code == 0, result.output
    for name in ("kafka", "postgres", "inbox"):
        assert name in result.output


def test_second_cli_up_is_a_no_op(running: local_stack.StackStatus) -> None:
    result = subprocess.run(
        [str(Path(sys.executable).with_name("nudge")), "stack", "up"],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("already running") == 3, result.stdout


def test_inbox_receives_a_message_over_smtp(running: local_stack.StackStatus) -> None:
    recipient = f"reader-{uuid.uuid4().hex[:12]}@example.test"
    message_id = _send(inbox.smtp_port(), recipient, "Welcome ✓")

    found = _wait_for_messages(inbox.base_url(), recipient)
    assert len(found) == 1
    message = found[0]
    assert message["subject"] == "Welcome ✓"
    assert message["to"] == [recipient]
    assert message["envelope_to"] == [recipient]
    assert message["from"] == "Nudge Test <sender@example.test>"
    assert message["message_id"] == message_id
    assert message["text"] == "Hello in plain text.\nSecond line.\n"
    assert "<b>HTML</b>" in message["html"]
    assert message["headers"]["List-Unsubscribe"] == "<https://example.test/u/1>"

    one = _get_json(f"{inbox.base_url()}/api/messages/{message['id']}")
    assert one["id"] == message["id"] and one["text"] == message["text"]
    with urllib.request.urlopen(inbox.base_url() + "/", timeout=10) as response:
        assert "Welcome ✓" in response.read().decode()

    result = CliRunner().invoke(cli, ["inbox", "--to", recipient, "--json"])
    assert result.exit_code == 0, result.output
    assert [m["id"] for m in json.loads(result.output)] == [message["id"]]


def test_inbox_lists_newest_first_and_clears(tmp_path: Path) -> None:
    # A private inbox process (same code, own ports and folder), so clearing it cannot
    # disturb other tests that use the stack's inbox.
    smtp, http = _free_port(), _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "deploy.local.inbox", "--dir", str(tmp_path),
         "--smtp-port", str(smtp), "--http-port", str(http)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{http}"
    try:
        deadline = time.monotonic() + 15
        while not (_port_open(smtp) and _port_open(http)):
            assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
            assert time.monotonic() < deadline, "the private inbox did not start"
            time.sleep(0.05)
        for n in range(3):
            _send(smtp, "someone@example.test", f"message {n}")
        listed = _wait_for_messages(base, "someone@example.test", count=3)
        assert [m["subject"] for m in listed] == ["message 2", "message 1", "message 0"]
        assert len(list(tmp_path.glob("*.eml"))) == 3

        request = urllib.request.Request(f"{base}/api/messages", method="DELETE")
        with urllib.request.urlopen(request, timeout=10) as response:
            assert json.loads(response.read()) == {"deleted": 3}
        assert _get_json(f"{base}/api/messages") == []
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stdout:
            proc.stdout.close()
    assert proc.returncode == 0


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


async def test_kafka_answers_metadata_and_round_trips(running: local_stack.StackStatus) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka.BOOTSTRAP)
    await admin.start()
    try:
        assert isinstance(await admin.list_topics(), list)
    finally:
        await admin.close()

    topic = f"stack-test-{uuid.uuid4().hex[:8]}"
    producer = AIOKafkaProducer(bootstrap_servers=kafka.BOOTSTRAP, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"ping", key=b"person-1")
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=kafka.BOOTSTRAP, group_id=topic, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        record = await consumer.getone()
        assert (record.key, record.value) == (b"person-1", b"ping")
    finally:
        await consumer.stop()


async def test_postgres_serves_nudge_and_isolated_databases(running: local_stack.StackStatus) -> None:
    conn = await connect_server(postgres.dsn())
    try:
        assert await conn.fetchval("SELECT current_user") == "nudge"
    finally:
        await conn.close()

    name = f"test_stack_{uuid.uuid4().hex[:8]}"
    dsn = postgres.create_database(name)
    try:
        assert dsn == f"postgresql://nudge:nudge@127.0.0.1:15432/{name}"
        conn = await connect_server(dsn)
        try:
            await conn.execute("CREATE TABLE probe (id int PRIMARY KEY)")
            assert await conn.fetchval("SELECT current_database()") == name
        finally:
            await conn.close()
        # "Fresh": creating it again starts from an empty database.
        postgres.create_database(name, migrate_schema=False)
        conn = await connect_server(dsn)
        try:
            assert await conn.fetchval("SELECT to_regclass('probe')") is None
        finally:
            await conn.close()
    finally:
        postgres.drop_database(name)
    with pytest.raises(asyncpg.InvalidCatalogNameError):
        await connect_server(dsn)


def test_stack_dir_and_ports_are_configurable(monkeypatch: pytest.MonkeyPatch) -> None:
    # Read at call time, so tests and `nudge dev` can run a second stack beside the shared one.
    monkeypatch.setenv("NUDGE_STACK_DIR", "/tmp/nudge-elsewhere")
    monkeypatch.setenv("NUDGE_KAFKA_PORT", "29192")
    monkeypatch.setenv("NUDGE_POSTGRES_PORT", "25532")
    assert str(kafka.data_dir()) == "/tmp/nudge-elsewhere/kafka/data"
    assert kafka.cluster().bootstrap == "127.0.0.1:29192"
    three = kafka.cluster(3)
    assert three.bootstrap == "127.0.0.1:29192,127.0.0.1:29194,127.0.0.1:29196"
    assert [n.controller_port for n in three.nodes] == [29193, 29195, 29197]
    assert str(three.node(2).data_dir) == "/tmp/nudge-elsewhere/kafka-3/broker-2/data"
    assert (three.replication_factor, three.min_insync_replicas) == (3, 2)
    assert postgres.dsn() == "postgresql://nudge:nudge@127.0.0.1:25532/nudge"
    if os.geteuid() == 0:
        # As root the server runs as Debian's `postgres` user, in that user's own home.
        assert postgres.data_dir().is_relative_to(postgres.DEBIAN_HOME / "nudge")
    else:
        assert str(postgres.data_dir()) == "/tmp/nudge-elsewhere/postgres/data"


def _modes(paths: list[Path]) -> dict[str, int]:
    return {str(p): p.stat().st_mode for p in paths if p.exists()}


def test_a_private_stack_comes_up_and_purge_leaves_the_machine_as_it_was(tmp_path: Path) -> None:
    stack_dir = tmp_path / "stack"
    cache = tmp_path / "cache"
    cache.mkdir()
    # The jars are reused through a link (purge removes the link, never what it points to).
    jars = kafka.libs_dir().parent
    (cache / jars.name).symlink_to(jars)
    base = _free_block(2)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("NUDGE_")},
        "NUDGE_STACK_DIR": str(stack_dir), "NUDGE_CACHE_DIR": str(cache),
        "NUDGE_KAFKA_PORT": str(base), "NUDGE_POSTGRES_PORT": str(_free_port()),
        "NUDGE_INBOX_SMTP_PORT": str(_free_port()), "NUDGE_INBOX_HTTP_PORT": str(_free_port()),
    }
    watched = [*tmp_path.parents, Path("/var/lib/postgresql"), Path.home()]
    modes_before = _modes(watched)
    users_before = Path("/etc/passwd").read_text()
    nudge = str(Path(sys.executable).with_name("nudge"))

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([nudge, *args], env=env, capture_output=True, text=True, timeout=180)

    try:
        up = run("stack", "up")
        assert up.returncode == 0, up.stdout + up.stderr
        assert f"NUDGE_KAFKA_BOOTSTRAP=127.0.0.1:{base}" in up.stdout
        assert run("stack", "status").returncode == 0
    finally:
        purged = run("stack", "down", "--purge", "--keep-packages")
    assert purged.returncode == 0, purged.stdout + purged.stderr
    assert "stack purged" in purged.stdout
    assert not stack_dir.exists() and not cache.exists()
    assert jars.exists()
    assert f"removed {postgres.DEBIAN_HOME / 'nudge'}" in purged.stdout or os.geteuid() != 0
    assert _modes(watched) == modes_before
    assert Path("/etc/passwd").read_text() == users_before


def _free_block(count: int) -> int:
    # `count` brokers need 2 consecutive ports each (client, controller).
    for _ in range(50):
        first = _free_port()
        if first + 2 * count < 65536 and all(_port_free(first + i) for i in range(2 * count)):
            return first
    raise RuntimeError("no block of free ports found")


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False
