"""Running Nudge's own processes (worker, API) as subprocesses: for `nudge dev`, tests and bench."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import secrets
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from schemas.errors import StateError
from streams.kafka_offsets import committed_offsets, end_offsets
from streams.settings import Settings, reveal

WORKER_READY_LINE = "[^Worker]: Ready"


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class NotReady(StateError, TimeoutError):
    """Something awaited did not happen in time; the message says what, and where to look."""


def wait_for(predicate: Any, timeout: float, interval: float = 0.1, what: str = "condition") -> Any:
    """Poll `predicate` until it returns something truthy; raise NotReady after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise NotReady(f"timed out after {timeout:.0f}s waiting for {what}")


class NudgeProcesses:
    """A worker and an API run with `env` (their own app id, ports, data dir), logging to `log_dir`."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env = env
        self.log_dir = log_dir
        log_dir.mkdir(parents=True, exist_ok=True)
        self.worker: subprocess.Popen[bytes] | None = None
        self.api: subprocess.Popen[bytes] | None = None
        self._worker_starts = 0

    @property
    def settings(self) -> Settings:
        """The settings the processes run with (defaults where `env` sets nothing)."""
        return Settings.from_env(self.env)

    @property
    def base_url(self) -> str:
        settings = self.settings
        if settings.tls_cert is not None:
            # The local certificate names localhost (streams/http/tls.py).
            return f"https://localhost:{settings.http_port}"
        return f"http://{settings.http_host}:{settings.http_port}"

    def _open(self, request: urllib.request.Request | str, timeout: float) -> Any:
        # Our own process on loopback: its certificate is checked by the client tests, not here.
        context = ssl._create_unverified_context() if self.settings.tls_cert is not None else None
        return urllib.request.urlopen(request, timeout=timeout, context=context)

    def _spawn(self, command: str, log_name: str) -> subprocess.Popen[bytes]:
        log = open(self.log_dir / log_name, "ab")
        return subprocess.Popen(
            [sys.executable, "-m", "streams.cli", command],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self.env,
        )

    def running(self) -> list[str]:
        """Names of the processes that are still alive."""
        return [
            name
            for name, proc in (("worker", self.worker), ("api", self.api))
            if proc is not None and proc.poll() is None
        ]

    def start_worker(self, timeout: float = 90.0) -> None:
        """Start a worker and wait until Faust says it is ready."""
        self._worker_starts += 1
        log_name = f"worker-{self._worker_starts}.log"
        self.worker = self._spawn("worker", log_name)
        log_path = self.log_dir / log_name

        def ready() -> bool:
            if self.worker is not None and self.worker.poll() is not None:
                raise NotReady(f"worker exited early:\n{log_path.read_text()[-4000:]}")
            return WORKER_READY_LINE in log_path.read_text(errors="replace")

        wait_for(ready, timeout, 0.2, "the worker to be ready")

    def start_api(self, timeout: float = 30.0) -> None:
        """Start the API and wait until /health answers."""
        self.api = self._spawn("api", "api.log")

        def healthy() -> bool:
            if self.api is not None and self.api.poll() is not None:
                raise NotReady(f"api exited early:\n{(self.log_dir / 'api.log').read_text()[-4000:]}")
            try:
                with self._open(self.base_url + "/health", timeout=1):
                    return True
            except OSError:
                return False

        wait_for(healthy, timeout, 0.2, "the API to answer /health")

    def kill_worker(self) -> None:
        """SIGKILL the worker: no shutdown, no flush, no commit."""
        assert self.worker is not None
        self.worker.send_signal(signal.SIGKILL)
        self.worker.wait(timeout=10)

    def kill_api(self) -> None:
        """SIGKILL the API: requests in flight get no answer."""
        assert self.api is not None
        self.api.send_signal(signal.SIGKILL)
        self.api.wait(timeout=10)

    def pause_worker(self) -> None:
        """SIGSTOP the worker: it keeps its sockets and claims but does nothing (a long GC, a VM freeze)."""
        assert self.worker is not None
        self.worker.send_signal(signal.SIGSTOP)

    def resume_worker(self) -> None:
        """SIGCONT a paused worker: it carries on from where it stopped, unaware of the gap."""
        assert self.worker is not None
        self.worker.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        """Stop whatever still runs: SIGTERM, then SIGKILL."""
        for proc in (self.api, self.worker):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGCONT)  # a paused process would never see SIGTERM
                proc.send_signal(signal.SIGTERM)
        for proc in (self.api, self.worker):
            if proc is not None:
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=5)

    def request(
        self, method: str, path: str, body: Any = None, auth: tuple[str, str] | None = None,
        *, key: str = "track",
    ) -> tuple[int, Any]:
        """Call the API; return (status, parsed JSON).

        `key` picks the test's credential: "track" (Basic site_id:api_key, the default),
        "read" or "send" (Bearer); `auth` gives Basic credentials of its own instead.
        """
        settings = self.settings
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base_url + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        if auth is None and key in ("read", "send"):
            req.add_header("Authorization", f"Bearer {reveal(settings.read_api_key if key == 'read' else settings.send_api_key)}")
        else:
            user, password = auth or (settings.site_id, settings.api_key.get_secret_value())
            token = base64.b64encode(f"{user}:{password}".encode()).decode()
            req.add_header("Authorization", f"Basic {token}")
        try:
            # Generous: on a loaded 2-core CI machine the broker can take seconds to elect leaders.
            with self._open(req, timeout=30) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null")


def nudge_env(
    *,
    app_id: str,
    database_url: str,
    smtp_url: str,
    data_dir: Path,
    campaigns_dir: Path,
    kafka_bootstrap: str,
) -> dict[str, str]:
    """The environment of a test's Nudge processes: everything isolated per test."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUDGE_")}
    env.update(
        NUDGE_APP_ID=app_id,
        NUDGE_DATABASE_URL=database_url,
        NUDGE_SMTP_URL=smtp_url,
        NUDGE_DATA_DIR=str(data_dir),
        NUDGE_CAMPAIGNS_DIR=str(campaigns_dir),
        NUDGE_KAFKA_BOOTSTRAP=kafka_bootstrap,
        NUDGE_HTTP_PORT=str(free_port()),
        NUDGE_WORKER_WEB_PORT=str(free_port()),
        NUDGE_SITE_ID="test-site",
        # Every scope its own key, and a real link secret: the processes refuse development values.
        NUDGE_API_KEY="test-track-key-" + secrets.token_hex(8),
        NUDGE_READ_API_KEY="test-read-key-" + secrets.token_hex(8),
        NUDGE_SEND_API_KEY="test-send-key-" + secrets.token_hex(8),
        NUDGE_SEGMENT_WRITE_KEY="test-write-key-" + secrets.token_hex(8),
        NUDGE_BROWSER_WRITE_KEY="test-browser-key-" + secrets.token_hex(8),
        NUDGE_SECRET_KEY=secrets.token_urlsafe(32),
        NUDGE_TIMER_TICK_SECONDS="0.1",
        PYTHONUNBUFFERED="1",
    )
    return env


def text_of(message: Any) -> str:
    """The plain-text part of a received email.message.EmailMessage."""
    part = message.get_body(preferencelist=("plain",))
    return part.get_content() if part is not None else ""


def delete_topics(bootstrap: str, app_id: str) -> int:
    """Delete every topic of one deployment (`<app_id>-*`), so test runs leave no partitions behind."""
    from aiokafka.admin import AIOKafkaAdminClient

    async def run() -> int:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            names = [t for t in await admin.list_topics() if t.startswith(f"{app_id}-")]
            if names:
                await admin.delete_topics(names)
            return len(names)
        finally:
            await admin.close()

    return asyncio.run(run())


async def caught_up(settings: Settings, topic: str) -> bool:
    """Whether the worker has committed everything on `topic` (so it applied all of it)."""
    ends = await end_offsets(settings.kafka_bootstrap, topic)
    done = await committed_offsets(settings.kafka_bootstrap, settings.app_id, topic)
    return all(done.get(p, 0) >= end for p, end in ends.items())

