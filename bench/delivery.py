"""Delivery benchmark: outbox -> render -> SMTP against a local SMTP server in another process.

Phase 1 (throughput): N rows pre-inserted, L delivery loops (each with its own SMTP pool of
C connections) drain them; reports messages/s. Phase 2 (latency): rows are inserted at a
steady rate below capacity while the loops run; reports p50/p99 from outbox insert to the
SMTP server's acceptance (its own clock, same host).

    .venv/bin/python bench/delivery.py --messages 5000 --loops 2 --connections 4
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from agents.sender import outbox
from agents.sender.delivery import DeliveryLoop
from agents.sender.smtp import SmtpPool
from schemas.commands import RenderContext, SendEmail
from schemas.templates import EmailTemplate
from streams.database import create_pool
from streams.settings import Settings, SmtpRelay

_SERVER = r"""
import sys, time, asyncio
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

TEMPLATES = {
    "bench": EmailTemplate(
        id="bench",
        subject="Hello {{ customer.first_name | default('there') }}",
        body="<html><body><p>Hi {{ customer.first_name }}, your plan is {{ event.plan | upcase }}."
             "</p>{% for p in customer.products %}<a href='https://shop.test/{{ p }}'>{{ p }}</a>"
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


async def _noop(outcome: object) -> None:
    return None


def _received(path: Path) -> dict[str, float]:
    accepted: dict[str, float] = {}
    for line in path.read_text().splitlines():
        message_id, at = line.split()
        accepted.setdefault(message_id, float(at))
    return accepted


async def run(args: argparse.Namespace) -> None:
    from deploy.local import postgres, stack

    stack.up()
    name = f"nudge_bench_{uuid.uuid4().hex[:8]}"
    dsn = postgres.create_database(name)
    log = Path(tempfile.mkdtemp()) / "received.txt"
    log.touch()
    port = 20000 + (uuid.uuid4().int % 20000)
    server = subprocess.Popen([sys.executable, "-c", _SERVER, str(port), str(log)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert server.stdout is not None and server.stdout.readline().strip() == "ready"
    settings = Settings(mail_from="Bench <b@bench.test>", public_url="http://bench.test",
                        smtp_url=f"smtp://127.0.0.1:{port}")
    pool = await create_pool(dsn, settings.app_id, min_size=2, max_size=4 + 2 * args.loops)
    pools = [SmtpPool(SmtpRelay(host="127.0.0.1", port=port), size=args.connections)
             for _ in range(args.loops)]
    loops = [DeliveryLoop(pool, smtp, TEMPLATES, settings, _noop, limit=args.batch,
                          concurrency=args.connections, idle_seconds=0.02)
             for smtp in pools]
    try:
        # Phase 1: throughput from a full outbox.
        now = time.time()
        await outbox.insert_sends(pool, [_command(i, now) for i in range(args.messages)])
        started = time.perf_counter()
        tasks = [asyncio.create_task(loop.run()) for loop in loops]
        while await pool.fetchval("SELECT count(*) FROM outbox WHERE status <> 'sent'"):
            await asyncio.sleep(0.05)
        elapsed = time.perf_counter() - started
        rate = args.messages / elapsed
        print(f"throughput: {args.messages} messages in {elapsed:.2f}s = {rate:.0f} msg/s "
              f"({args.loops} loops x {args.connections} connections, batch {args.batch})")

        # Phase 2: latency at a steady offered load of `--load` x the measured rate.
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
            for loop in loops:
                loop.wake()
            ids.append(command.message_id)
        while await pool.fetchval("SELECT count(*) FROM outbox WHERE status <> 'sent'"):
            await asyncio.sleep(0.05)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        accepted = _received(log)
        created = {r["message_id"]: r["created_at"].timestamp() for r in await pool.fetch(
            "SELECT message_id, created_at FROM outbox WHERE message_id = ANY($1)", ids)}
        latencies = sorted((accepted[m] - created[m]) * 1000 for m in ids if m in accepted)
        p99 = latencies[int(len(latencies) * 0.99) - 1]
        print(f"latency at {offered:.0f} msg/s offered ({count} messages): "
              f"p50 {statistics.median(latencies):.1f} ms, p99 {p99:.1f} ms, "
              f"max {latencies[-1]:.1f} ms (outbox insert -> SMTP 250)")
        total = len(_received(log))
        print(f"received {total} distinct messages for {args.messages + count} rows")
    finally:
        await asyncio.gather(*(smtp.close() for smtp in pools))
        await pool.close()
        server.communicate("", timeout=10)
        postgres.drop_database(name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--loops", type=int, default=2)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--load", type=float, default=0.5, help="phase 2 load, x capacity")
    parser.add_argument("--seconds", type=float, default=10)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
