"""The development inbox: an SMTP server that keeps every message, and a web page to read them.

Messages are stored as `<id>.eml` (the bytes received) plus a `<id>.json` summary under
`<stack dir>/inbox/`. The HTTP side serves `/` (HTML), `/api/messages` and
`/api/messages/{id}` (JSON), `/api/messages/{id}/raw`, and `DELETE /api/messages`.
Run it detached with `up()`, or in the foreground with `python -m deploy.local.inbox`.
"""

from __future__ import annotations

import argparse
import asyncio
import email
import email.policy
import html
import json
import logging
import os
import re
import secrets
import signal
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import replace
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import getaddresses
from pathlib import Path
from typing import Any

from deploy.local import ServiceStatus, StackError, logs_dir, stack_dir
from deploy.local.process import locked, port_open, read_pid, spawn, stop, tail

HOST = "127.0.0.1"
DEFAULT_SMTP_PORT = 1025
DEFAULT_HTTP_PORT = 8025
MAX_MESSAGE_BYTES = 32 * 1024 * 1024
START_TIMEOUT = 15.0
MODULE = "deploy.local.inbox"

_ID = re.compile(r"^[0-9]+-[0-9a-f]+$")
log = logging.getLogger("nudge.inbox")


# -- where things are -------------------------------------------------------------------------


def smtp_port() -> int:
    """The SMTP port (NUDGE_INBOX_SMTP_PORT, default 1025)."""
    return int(os.environ.get("NUDGE_INBOX_SMTP_PORT") or DEFAULT_SMTP_PORT)


def http_port() -> int:
    """The HTTP port (NUDGE_INBOX_HTTP_PORT, default 8025)."""
    return int(os.environ.get("NUDGE_INBOX_HTTP_PORT") or DEFAULT_HTTP_PORT)


def base_url() -> str:
    """The inbox's web address."""
    return f"http://{HOST}:{http_port()}"


def messages_dir() -> Path:
    """Where received messages are stored."""
    return stack_dir() / "inbox"


def log_file() -> Path:
    """The inbox server's log."""
    return logs_dir() / "inbox.log"


def _pid_file() -> Path:
    return stack_dir() / "inbox.pid"


# -- storage ----------------------------------------------------------------------------------


def _addresses(value: str | None) -> list[str]:
    return [address for _, address in getaddresses([value or ""]) if address]


def save(folder: Path, envelope_from: str, envelope_to: list[str], data: bytes) -> str:
    """Store one received message and its summary; return its id."""
    folder.mkdir(parents=True, exist_ok=True)
    # Ids sort by arrival time, so "newest first" is a reverse sort of the file names.
    message_id = f"{time.time_ns()}-{secrets.token_hex(3)}"
    headers = email.message_from_bytes(data, policy=email.policy.default, _class=EmailMessage)
    summary = {
        "id": message_id,
        "from": str(headers.get("From", "")),
        "to": _addresses(headers.get("To")),
        "cc": _addresses(headers.get("Cc")),
        "envelope_from": envelope_from,
        "envelope_to": list(envelope_to),
        "subject": str(headers.get("Subject", "")),
        "date": str(headers.get("Date", "")),
        "message_id": str(headers.get("Message-ID", "")),
        "received": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "size": len(data),
    }
    # Write, then rename: a reader never sees half a message.
    for suffix, content in ((".eml", data), (".json", json.dumps(summary).encode())):
        partial = folder / f".{message_id}{suffix}.tmp"
        partial.write_bytes(content)
        partial.replace(folder / f"{message_id}{suffix}")
    return message_id


def _summaries(folder: Path) -> list[dict[str, Any]]:
    found = []
    for path in sorted(folder.glob("*.json"), reverse=True):
        try:
            found.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            continue  # deleted by a concurrent clear
    return found


def _matches(summary: dict[str, Any], to: str | None) -> bool:
    if not to:
        return True
    wanted = to.lower()
    return any(wanted in a.lower() for a in summary["to"] + summary["cc"] + summary["envelope_to"])


def _part(message: EmailMessage, subtype: str) -> str | None:
    part = message.get_body(preferencelist=(subtype,))
    if part is None or part.get_content_subtype() != subtype:
        return None
    content = part.get_content()
    text = content if isinstance(content, str) else content.decode("utf-8", "replace")
    # SMTP delivers CRLF line endings; callers compare against what they rendered.
    return text.replace("\r\n", "\n")


def read(folder: Path, message_id: str) -> dict[str, Any] | None:
    """One stored message, parsed: summary fields plus text, html and headers (None if absent)."""
    if not _ID.match(message_id):
        return None
    try:
        summary = json.loads((folder / f"{message_id}.json").read_text())
        raw = (folder / f"{message_id}.eml").read_bytes()
    except (OSError, ValueError):
        return None
    message = email.message_from_bytes(raw, policy=email.policy.default, _class=EmailMessage)
    headers: dict[str, str] = {}
    for name, value in message.items():
        # A repeated header keeps every value, one per line.
        headers[name] = f"{headers[name]}\n{value}" if name in headers else str(value)
    return {**summary, "text": _part(message, "plain"), "html": _part(message, "html"),
            "headers": headers}


def list_messages(folder: Path, limit: int = 50, to: str | None = None) -> list[dict[str, Any]]:
    """The newest `limit` messages (0: all), optionally only those sent to an address containing `to`."""
    chosen = [s for s in _summaries(folder) if _matches(s, to)]
    if limit > 0:
        chosen = chosen[:limit]
    return [m for m in (read(folder, s["id"]) for s in chosen) if m is not None]


def clear(folder: Path) -> int:
    """Delete every stored message; return how many there were."""
    count = 0
    for path in folder.glob("*"):
        if path.suffix == ".eml":
            count += 1
        if path.is_file():
            path.unlink(missing_ok=True)
    return count


# -- the servers ------------------------------------------------------------------------------


class _Handler:
    """aiosmtpd handler: accept every recipient, store every message."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        data = envelope.original_content or envelope.content
        if isinstance(data, str):
            data = data.encode("utf-8", "surrogateescape")
        message_id = save(self.folder, envelope.mail_from or "", list(envelope.rcpt_tos), data)
        log.info("received %s from %s to %s (%d bytes)", message_id, envelope.mail_from,
                 ",".join(envelope.rcpt_tos), len(data))
        return "250 Message accepted for delivery"


def _accept_any_login(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
    # Like mailpit's --smtp-auth-accept-any: a relay URL with credentials works against the inbox.
    from aiosmtpd.smtp import AuthResult

    return AuthResult(success=True)


def _page(title: str, body: str, refresh: bool = False) -> str:
    meta = '<meta http-equiv="refresh" content="5">' if refresh else ""
    return (
        f"<!doctype html><html><head><meta charset='utf-8'>{meta}<title>{html.escape(title)}</title>"
        "<style>body{font-family:system-ui,sans-serif;margin:2em}table{border-collapse:collapse;"
        "width:100%}td,th{border-bottom:1px solid #ddd;padding:.4em;text-align:left}"
        "tr:hover{background:#f5f5f5}pre{white-space:pre-wrap;background:#f8f8f8;padding:1em}"
        "iframe{width:100%;height:60vh;border:1px solid #ddd}</style></head>"
        f"<body>{body}</body></html>"
    )


def _web_app(folder: Path) -> Any:
    from aiohttp import web

    async def index(request: web.Request) -> web.Response:
        rows = "".join(
            f"<tr><td>{html.escape(s['received'])}</td><td>{html.escape(s['from'])}</td>"
            f"<td>{html.escape(', '.join(s['to'] or s['envelope_to']))}</td>"
            f"<td><a href='/messages/{s['id']}'>{html.escape(s['subject'] or '(no subject)')}</a></td></tr>"
            for s in _summaries(folder)[:500]
        )
        body = (
            "<h1>Nudge inbox</h1><p>Everything sent to "
            f"smtp://{HOST}:{request.app['smtp_port']} lands here. JSON: "
            "<a href='/api/messages'>/api/messages</a></p>"
            "<table><tr><th>Received</th><th>From</th><th>To</th><th>Subject</th></tr>"
            f"{rows}</table>"
        )
        return web.Response(text=_page("Nudge inbox", body, refresh=True), content_type="text/html")

    async def show(request: web.Request) -> web.Response:
        message = read(folder, request.match_info["id"])
        if message is None:
            raise web.HTTPNotFound(text="no such message")
        headers = "\n".join(f"{k}: {v}" for k, v in message["headers"].items())
        parts = [f"<p><a href='/'>&larr; inbox</a> · <a href='/api/messages/{message['id']}'>json</a>"
                 f" · <a href='/api/messages/{message['id']}/raw'>raw</a></p>",
                 f"<h2>{html.escape(message['subject'])}</h2><pre>{html.escape(headers)}</pre>"]
        if message["html"]:
            # sandbox="": the message's scripts and forms stay inert.
            parts.append(f"<h3>HTML</h3><iframe sandbox='' srcdoc=\"{html.escape(message['html'])}\"></iframe>")
        if message["text"]:
            parts.append(f"<h3>Text</h3><pre>{html.escape(message['text'])}</pre>")
        return web.Response(text=_page(message["subject"], "".join(parts)), content_type="text/html")

    async def api_list(request: web.Request) -> web.Response:
        try:
            limit = int(request.query.get("limit", "50"))
        except ValueError:
            raise web.HTTPBadRequest(text="limit must be an integer") from None
        return web.json_response(list_messages(folder, limit, request.query.get("to")))

    async def api_one(request: web.Request) -> web.Response:
        message = read(folder, request.match_info["id"])
        if message is None:
            raise web.HTTPNotFound(text='{"error": "no such message"}', content_type="application/json")
        return web.json_response(message)

    async def api_raw(request: web.Request) -> web.Response:
        message_id = request.match_info["id"]
        path = folder / f"{message_id}.eml"
        if not _ID.match(message_id) or not path.exists():
            raise web.HTTPNotFound(text="no such message")
        return web.Response(body=path.read_bytes(), content_type="message/rfc822")

    async def api_clear(request: web.Request) -> web.Response:
        return web.json_response({"deleted": clear(folder)})

    app = web.Application()
    app.add_routes([
        web.get("/", index),
        web.get("/messages/{id}", show),
        web.get("/api/messages", api_list),
        web.delete("/api/messages", api_clear),
        web.get("/api/messages/{id}", api_one),
        web.get("/api/messages/{id}/raw", api_raw),
    ])
    return app


async def serve(folder: Path, host: str, smtp: int, http: int) -> None:
    """Run the SMTP and HTTP servers until SIGTERM or SIGINT."""
    from aiohttp import web
    from aiosmtpd.smtp import SMTP

    loop = asyncio.get_running_loop()
    folder.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - once, before the servers start
    handler = _Handler(folder)
    smtp_server = await loop.create_server(
        lambda: SMTP(handler, hostname="nudge-inbox", data_size_limit=MAX_MESSAGE_BYTES,
                     enable_SMTPUTF8=True, auth_require_tls=False,
                     authenticator=_accept_any_login, loop=loop),
        host, smtp,
    )
    app = _web_app(folder)
    app["smtp_port"] = smtp
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, http).start()
    log.info("inbox: smtp://%s:%d  http://%s:%d  storing in %s", host, smtp, host, http, folder)
    stopping = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    await stopping.wait()
    smtp_server.close()
    await runner.cleanup()
    await smtp_server.wait_closed()


def main(argv: list[str] | None = None) -> None:
    """`python -m deploy.local.inbox`: run the inbox in the foreground."""
    parser = argparse.ArgumentParser(prog="python -m deploy.local.inbox", description=__doc__)
    parser.add_argument("--dir", type=Path, default=messages_dir())
    parser.add_argument("--host", default=HOST)
    parser.add_argument("--smtp-port", type=int, default=smtp_port())
    parser.add_argument("--http-port", type=int, default=http_port())
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    # aiosmtpd logs every SMTP command at INFO.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    asyncio.run(serve(args.dir, args.host, args.smtp_port, args.http_port))


# -- the detached service ---------------------------------------------------------------------


def pid() -> int | None:
    """The inbox server's pid if it is running."""
    return read_pid(_pid_file(), MODULE)


def status() -> ServiceStatus:
    """Whether the inbox runs (pid alive, SMTP and HTTP ports open)."""
    current = pid()
    return ServiceStatus(
        name="inbox",
        running=current is not None and port_open(HOST, smtp_port()) and port_open(HOST, http_port()),
        address=f"smtp://{HOST}:{smtp_port()}  {base_url()}",
        pid=current,
        log=log_file(),
    )


def up() -> ServiceStatus:
    """Start the inbox detached unless it already runs."""
    with locked(stack_dir() / "inbox.lock"):
        return _up(time.monotonic())


def _up(started: float) -> ServiceStatus:
    current = pid()
    action = "already running"
    if current is None:
        for port in (smtp_port(), http_port()):
            if port_open(HOST, port):
                raise StackError(
                    f"port {port} on {HOST} is taken by a process this stack did not start (no "
                    f"live pid in {_pid_file()}); stop it, or move the inbox with "
                    f"NUDGE_INBOX_SMTP_PORT / NUDGE_INBOX_HTTP_PORT"
                )
        argv = [sys.executable, "-m", MODULE, "--dir", str(messages_dir()), "--host", HOST,
                "--smtp-port", str(smtp_port()), "--http-port", str(http_port())]
        current = spawn(argv, log_file(), _pid_file())
        action = "started"
    deadline = started + START_TIMEOUT
    while not (port_open(HOST, smtp_port()) and port_open(HOST, http_port())):
        if pid() is None:
            raise StackError(f"the inbox exited during start-up; see {log_file()}:\n{tail(log_file())}")
        if time.monotonic() > deadline:
            raise StackError(f"the inbox did not open its ports within {START_TIMEOUT:.0f}s; see {log_file()}")
        time.sleep(0.05)
    return replace(status(), action=action, seconds=time.monotonic() - started)


def down() -> bool:
    """Stop the inbox; True if it was running. Stored messages are kept."""
    current = pid()
    if current is None:
        return False
    stop(current, timeout=10.0)
    _pid_file().unlink(missing_ok=True)
    return True


# -- a client for `nudge inbox` ---------------------------------------------------------------


def _request(method: str, path: str) -> Any:
    request = urllib.request.Request(base_url() + path, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())
    except urllib.error.URLError as exc:
        raise StackError(
            f"the inbox at {base_url()} does not answer ({exc.reason}); start it with `nudge stack up`"
        ) from exc


def fetch(limit: int = 20, to: str | None = None) -> list[dict[str, Any]]:
    """The newest messages from the running inbox, over its HTTP API."""
    query = f"?limit={limit}" + (f"&to={urllib.parse.quote(to)}" if to else "")
    return _request("GET", "/api/messages" + query)


def clear_remote() -> int:
    """Delete every message in the running inbox; return how many were deleted."""
    return int(_request("DELETE", "/api/messages")["deleted"])


if __name__ == "__main__":
    main()
