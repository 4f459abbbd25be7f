"""An SMTP server in a process of its own for the benchmarks: notes each Message-ID it accepts.

aiosmtpd (the server the tests use), answering 250 to everything, appending one line
`<message id> <unix time>` per accepted message to a file the bench reads.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

_SERVER = r"""
import sys, time
from aiosmtpd.controller import Controller
out = open(sys.argv[2], "a", buffering=1)
class H:
    async def handle_DATA(self, server, session, envelope):
        for line in envelope.content.split(b"\r\n"):
            if line.lower().startswith(b"message-id:"):
                out.write(f"{line.split(b'<')[1].split(b'@')[0].decode()} {time.time()}\n")
                break
        return "250 OK"
c = Controller(H(), hostname="127.0.0.1", port=int(sys.argv[1]))
c.start()
print("ready", flush=True)
sys.stdin.read()
c.stop()
"""


class SmtpServer:
    """Start with `start()`, read with `accepted()`, stop with `stop()`."""

    def __init__(self, log: Path) -> None:
        self.log = log
        self.port = 20000 + (uuid.uuid4().int % 20000)
        self.process: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start the server and wait until it listens."""
        self.log.touch()
        self.process = subprocess.Popen(
            [sys.executable, "-c", _SERVER, str(self.port), str(self.log)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        assert self.process.stdout is not None
        if self.process.stdout.readline().strip() != "ready":
            raise RuntimeError("the benchmark SMTP server did not start")

    def stop(self) -> None:
        """Stop the server (it finishes the line it is writing)."""
        if self.process is not None and self.process.poll() is None:
            self.process.communicate("", timeout=10)

    def accepted(self) -> list[tuple[str, float]]:
        """Every (message id, time accepted), in order, duplicates included."""
        found = []
        for line in self.log.read_text().splitlines():
            message_id, _, at = line.partition(" ")
            if at:
                found.append((message_id, float(at)))
        return found
