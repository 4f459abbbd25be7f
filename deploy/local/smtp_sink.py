"""An SMTP server the fault suite owns: records every message it accepts, and can go down.

Unlike the development inbox it keeps nothing on disk: each accepted message becomes a
`Received` (when, to whom, its Message-ID and subject). `stop()` closes the port (clients get
connection refused, as from a relay that is down) and `start()` listens again on the same port.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from email.policy import default as default_policy
from typing import Any

from aiosmtpd.controller import Controller

_HEADERS = BytesHeaderParser(policy=default_policy)


@dataclass(frozen=True)
class Received:
    """One message the sink answered 250 to."""

    at: float
    rcpt: str
    message_id: str
    subject: str


class _Handler:
    """aiosmtpd's handler: appends each message to the sink's list, under its lock."""

    def __init__(self, sink: SmtpSink) -> None:
        self._sink = sink

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if self._sink.rcpt_delay:
            # A slow relay: senders spend longer inside each exchange, before the message goes.
            await asyncio.sleep(self._sink.rcpt_delay)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        headers = _HEADERS.parsebytes(envelope.content)
        message_id = str(headers.get("Message-ID", "")).strip().strip("<>").split("@", 1)[0]
        subject = str(headers.get("Subject", ""))
        now = time.time()
        with self._sink._lock:
            for rcpt in envelope.rcpt_tos:
                self._sink._received.append(Received(now, rcpt.lower(), message_id, subject))
        return "250 2.0.0 Message accepted"


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class SmtpSink:
    """A recording SMTP server on `host`:`port` (a free port if none is given)."""

    def __init__(self, host: str = "127.0.0.1", port: int | None = None) -> None:
        self.host = host
        self.port = port or _free_port(host)
        self._lock = threading.Lock()
        self._received: list[Received] = []
        self._controller: Controller | None = None
        # Seconds each RCPT TO waits before its 250: 0 answers at once.
        self.rcpt_delay = 0.0

    @property
    def url(self) -> str:
        """This server as a NUDGE_SMTP_URL."""
        return f"smtp://{self.host}:{self.port}"

    @property
    def up(self) -> bool:
        """True while the sink accepts connections."""
        return self._controller is not None

    def start(self) -> None:
        """Listen (again) on the sink's port; a no-op if it already does."""
        if self._controller is not None:
            return
        controller = Controller(_Handler(self), hostname=self.host, port=self.port)
        controller.start()
        self._controller = controller

    def stop(self) -> None:
        """Close the port: from now on connections are refused, until `start()`."""
        if self._controller is None:
            return
        self._controller.stop()
        self._controller = None

    def received(self) -> list[Received]:
        """Every message accepted so far, in arrival order."""
        with self._lock:
            return list(self._received)

    def __enter__(self) -> SmtpSink:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
