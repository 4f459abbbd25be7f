"""Delivery benchmark: outbox -> checks -> render -> SMTP, beside raw SMTP into the same server.

The SMTP server (aiosmtpd, the one the tests use) runs in a process of its own and notes when
it accepted each Message-ID. In one run:

0. raw SMTP: plain `smtplib` senders (one thread per connection) push prebuilt messages;
1. render: what one message costs to render and build, in this process;
2. throughput: N rows pre-inserted, L delivery loops drain them (or `--processes P`
   `nudge deliver` processes do); messages/s, and the ratio to raw SMTP;
3. latency: rows inserted one by one at `--load` x the measured rate while the loops run;
   p50/p99 from outbox insert to the server's acceptance (same host, same clock).

    .venv/bin/python -m bench.delivery --messages 5000 --loops 1 --connections 4
"""

from __future__ import annotations

import argparse
import asyncio
import os
import smtplib
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import timeit
import uuid
from pathlib import Path

from agents.render.mime import build_email
from bench.smtp_server import SmtpServer
from agents.sender import outbox
from agents.sender.delivery import DeliveryLoop, build_for_row
from agents.sender.smtp import SmtpPool
from schemas.commands import RenderContext, SendEmail
from schemas.outbox import OutboxRow
from schemas.templates import EmailTemplate
from streams.database import create_pool
from streams.settings import Settings, SmtpRelay

TEMPLATES = {
    "bench": EmailTemplate(
        id="bench",
        version="bench1",
        subject="Hello {{ customer.first_name | default('there') }}, news for you",
        body="<html><body><p>Hi {{ customer.first_name }}, your plan is {{ event.plan | upcase }}."
             "</p>" + "<p>A paragraph of marketing text, the kind a newsletter carries.</p>" * 12
             + "{% for p in customer.products %}<a href='https://shop.test/{{ p }}'>{{ p }}</a>"
             "{% endfor %}<a href='{{ unsubscribe_url }}'>unsubscribe</a></body></html>",
    )
}


def _command(i: int, now: float) -> SendEmail:
    return SendEmail(
        message_id=f"b{i}-{uuid.uuid4().hex[:8]}", person=f"p{i}", to=f"p{i}@example.com",
        template="bench", campaign_id="bench", decided_at=now,
        context=RenderContext(customer={"first_name": f"P{i}", "products": ["a", "b", "c"]},
                              event={"plan": "pro"}),
    )


async def _noop(outcomes: object) -> None:
    return None


def raw_smtp(port: int, count: int, connections: int, settings: Settings) -> float:
    """Messages/s that plain smtplib senders push into the server (prebuilt, same size)."""
    row_like = [build_for_row(_row(_command(i, time.time())), TEMPLATES["bench"], settings, time.time())
                for i in range(connections)]

    def work(k: int, message: bytes) -> None:
        with smtplib.SMTP("127.0.0.1", port) as smtp:
            for _ in range(k):
                smtp.sendmail("b@bench.test", ["raw@example.com"], message)

    threads = [threading.Thread(target=work, args=(count // connections, m.data)) for m in row_like]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return (count // connections * connections) / (time.perf_counter() - started)


def _row(command: SendEmail) -> OutboxRow:
    now = time.time()
    return OutboxRow(
        message_id=command.message_id, person=command.person, to_address=command.to,
        template=command.template, command=command, status="sending", attempts=1,
        next_attempt_at=now, created_at=now, updated_at=now,
    )


def render_cost(settings: Settings, count: int = 2000) -> tuple[float, float]:
    """Microseconds per message: render + tracking + MIME, and the MIME build alone."""
    rows = [_row(_command(i, time.time())) for i in range(count)]
    template = TEMPLATES["bench"]
    it = iter(rows)
    total = timeit.timeit(lambda: build_for_row(next(it), template, settings, 1.7e9), number=count)
    built = build_for_row(rows[0], template, settings, 1.7e9)
    kwargs = dict(subject="Hello P0, news for you", text="x" * 900, html="y" * 2400, to="p0@example.com",
                  message_id="bench0", mail_from=settings.mail_from, domain="bench.test", date=1.7e9,
                  unsubscribe_url="https://bench.test/u/" + "t" * 120)
    mime = timeit.timeit(lambda: build_email(**kwargs), number=count)
    assert built.data
    return total / count * 1e6, mime / count * 1e6


async def run(args: argparse.Namespace) -> None:
    from deploy.local import postgres, stack

    stack.up()
    name = f"nudge_bench_{uuid.uuid4().hex[:8]}"
    dsn = postgres.create_database(name)
    server = SmtpServer(Path(tempfile.mkdtemp()) / "received.txt")
    server.start()
    port = server.port
    settings = Settings(mail_from="Bench <b@bench.test>", public_url="http://bench.test",
                        smtp_url=f"smtp://127.0.0.1:{port}", database_url=dsn,
                        smtp_connections=args.connections, delivery_batch=args.batch)
    pool = await create_pool(dsn, settings.app_id, min_size=2, max_size=4 + 2 * args.loops)
    smtp = SmtpPool(SmtpRelay(host="127.0.0.1", port=port), size=args.connections)
    wake = asyncio.Event()
    loops = [DeliveryLoop(pool, smtp, TEMPLATES, settings, _noop, name=f"bench/{i}",
                          wake_event=wake, idle_seconds=0.05)
             for i in range(args.loops)]
    workers: list[subprocess.Popen[bytes]] = []
    tasks: list[asyncio.Task[None]] = []
    try:
        raw = raw_smtp(port, args.raw_messages, args.connections, settings)
        print(f"raw SMTP: {raw:.0f} msg/s ({args.connections} smtplib connections, prebuilt messages)")
        per_message, mime_only = render_cost(settings)
        print(f"render + tracking + MIME: {per_message:.0f} µs per message (MIME build alone {mime_only:.0f} µs)")

        # Phase 2: throughput from a full outbox.
        now = time.time()
        await outbox.insert_sends(pool, [_command(i, now) for i in range(args.messages)])
        cpu_before, server_before = _cpu(), _cpu(server.process.pid)
        started = time.perf_counter()
        if args.processes:
            env = {**os.environ, "NUDGE_DATABASE_URL": dsn, "NUDGE_APP_ID": settings.app_id,
                   "NUDGE_SMTP_URL": settings.smtp_url, "NUDGE_SMTP_CONNECTIONS": str(args.connections),
                   "NUDGE_MAIL_FROM": settings.mail_from, "NUDGE_CAMPAIGNS_DIR": _templates_dir(),
                   "NUDGE_DELIVERY_NAME": f"bench-{uuid.uuid4().hex[:6]}"}
            workers = [subprocess.Popen([sys.executable, "-m", "streams.cli", "deliver",
                                         "--loops", str(args.loops)], env=env,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                       for _ in range(args.processes)]
        else:
            tasks = [asyncio.create_task(loop.run()) for loop in loops]
        while await pool.fetchval("SELECT count(*) FROM outbox WHERE status <> 'sent'"):
            await asyncio.sleep(0.05)
        elapsed = time.perf_counter() - started
        (user, system), (server_user, server_system) = _cpu(), _cpu(server.process.pid)
        user, system = user - cpu_before[0], system - cpu_before[1]
        server_cpu = server_user + server_system - sum(server_before)
        rate = args.messages / elapsed
        how = (f"{args.processes} nudge deliver processes x {args.loops} loops" if args.processes
               else f"{args.loops} loops in this process")
        print(f"throughput: {args.messages} messages in {elapsed:.2f}s = {rate:.0f} msg/s "
              f"({how}, {args.connections} connections, batch {args.batch}); "
              f"{rate / raw:.0%} of raw SMTP")
        if not args.processes:
            per = 1e6 / args.messages
            print(f"CPU per message: delivery {(user + system) * per:.0f} µs ({user * per:.0f} user, "
                  f"{system * per:.0f} kernel), SMTP server {server_cpu * per:.0f} µs")

        # Phase 3: latency at a steady offered load of `--load` x the measured rate.
        offered = rate * args.load
        count = int(offered * args.seconds)
        ids: list[str] = []
        begin = time.perf_counter()
        for i in range(count):
            due = begin + i / offered
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            command = _command(args.messages + i, time.time())
            await outbox.insert_sends(pool, [command])
            ids.append(command.message_id)
        while await pool.fetchval("SELECT count(*) FROM outbox WHERE status <> 'sent'"):
            await asyncio.sleep(0.05)
        accepted: dict[str, float] = {}
        for message_id, at in server.accepted():
            accepted.setdefault(message_id, at)
        created = {r["message_id"]: r["created_at"].timestamp() for r in await pool.fetch(
            "SELECT message_id, created_at FROM outbox WHERE message_id = ANY($1)", ids)}
        latencies = sorted((accepted[m] - created[m]) * 1000 for m in ids if m in accepted)
        p99 = latencies[max(0, int(len(latencies) * 0.99) - 1)]
        print(f"latency at {offered:.0f} msg/s offered ({count} messages, woken by NOTIFY): "
              f"p50 {statistics.median(latencies):.1f} ms, p99 {p99:.1f} ms, "
              f"max {latencies[-1]:.1f} ms (outbox insert -> SMTP 250)")
        rows = {r["message_id"] for r in await pool.fetch("SELECT message_id FROM outbox")}
        print(f"received {len(rows & set(accepted))} distinct messages for {len(rows)} rows")
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for worker in workers:
            worker.terminate()
            worker.wait(timeout=30)
        await smtp.close()
        await pool.close()
        server.stop()
        postgres.drop_database(name)


def _cpu(pid: int | None = None) -> tuple[float, float]:
    """(user, system) CPU seconds used so far by this process, or by `pid`."""
    fields = Path(f"/proc/{pid or 'self'}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def _templates_dir() -> str:
    """A project folder holding the bench template, for `nudge deliver` processes."""
    folder = Path(tempfile.mkdtemp()) / "templates"
    folder.mkdir()
    template = TEMPLATES["bench"]
    (folder / "bench.html").write_text(f"---\nsubject: {template.subject!r}\n---\n{template.body}\n")
    return str(folder.parent)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--raw-messages", type=int, default=4000)
    parser.add_argument("--loops", type=int, default=1)
    parser.add_argument("--processes", type=int, default=0, help="run nudge deliver processes instead")
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--load", type=float, default=0.5, help="phase 3 load, x capacity")
    parser.add_argument("--seconds", type=float, default=10)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
