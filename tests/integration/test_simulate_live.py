"""A recorded input file replayed by `nudge simulate` and by the live stack sends the same messages.

The same inputs go, one Kafka message each as a producer writes them, to a worker on the real
stack; its outbox must hold exactly the message ids `nudge simulate --events` predicts,
including the ones sent after a wait, by a timer.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from click.testing import CliRunner

from deploy.local.runner import NudgeProcesses, wait_for
from streams.cli.simulate import simulate
from streams.database import connect

pytestmark = pytest.mark.integration

PROJECT = {
    "campaigns/welcome.yaml": """\
id: welcome
trigger: {event: signed_up}
steps:
  - send: welcome
  - wait: 3s
  - branch:
      if: {event: created_project, since: entry}
      then: [{send: tips}]
      else: [{send: getting_started}]
""",
    "campaigns/cart.yaml": """\
id: cart
trigger: {event: added_to_cart}
reentry: always
exit: {event: purchased}
steps:
  - wait: 2s
  - send: cart_reminder
""",
    **{
        f"templates/{name}.html": f"---\nsubject: {name} {{{{ customer.first_name | default: 'there' }}}}\n---\n<p>{name}</p>\n"
        for name in ("welcome", "tips", "getting_started", "cart_reminder")
    },
}


def recording(now: float) -> list[dict]:
    """Three people over the last half minute: a branch both ways, an abandoned and a bought cart."""
    t = now - 30
    return [
        {"kind": "identify", "person": "ana", "at": t, "attributes": {"email": "ana@example.com", "first_name": "Ana"}},
        {"kind": "track", "person": "ana", "at": t + 1, "name": "signed_up", "data": {"plan": "trial"}},
        {"kind": "track", "person": "ana", "at": t + 2, "name": "created_project", "data": {}},
        {"kind": "identify", "person": "bo", "at": t + 1, "attributes": {"email": "bo@example.com"}},
        {"kind": "track", "person": "bo", "at": t + 3, "name": "signed_up", "data": {}},
        {"kind": "track", "person": "bo", "at": t + 4, "name": "added_to_cart", "data": {"sku": "A"}},
        {"kind": "identify", "person": "cy", "at": t + 2, "attributes": {"email": "cy@example.com"}},
        {"kind": "track", "person": "cy", "at": t + 5, "name": "added_to_cart", "data": {"sku": "B"}},
        {"kind": "track", "person": "cy", "at": t + 6, "name": "purchased", "data": {"sku": "B"}},
        {"kind": "track", "person": "cy", "at": t + 8, "name": "added_to_cart", "data": {"sku": "C"}},
    ]


def outbox(nudge: NudgeProcesses) -> set[tuple[str, str, str]]:
    async def query() -> set[tuple[str, str, str]]:
        conn = await connect(nudge.settings.database_url, nudge.settings.app_id)
        try:
            rows = await conn.fetch("SELECT message_id, person, template FROM outbox")
            return {(r["message_id"], r["person"], r["template"]) for r in rows}
        finally:
            await conn.close()

    return asyncio.run(query())


def test_simulate_and_the_live_stack_send_the_same_message_ids(start_nudge, tmp_path: Path) -> None:
    nudge = start_nudge(PROJECT, api=False)
    inputs = recording(time.time())
    path = tmp_path / "recording.jsonl"
    path.write_text("".join(json.dumps(i) + "\n" for i in inputs))

    report = json.loads(CliRunner().invoke(
        simulate, ["--campaigns", nudge.env["NUDGE_CAMPAIGNS_DIR"], "--events", str(path), "--json"]
    ).output)
    predicted = {
        (h["message_id"], person, h["text"].split()[1])
        for person, happenings in report["timelines"].items()
        for h in happenings if h["kind"] == "send"
    }
    assert {(p, t) for _, p, t in predicted} == {
        ("ana", "welcome"), ("ana", "tips"), ("bo", "welcome"), ("bo", "getting_started"),
        ("bo", "cart_reminder"), ("cy", "cart_reminder"),
    }

    async def produce() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=nudge.env["NUDGE_KAFKA_BOOTSTRAP"])
        await producer.start()
        try:
            for item in inputs:
                await producer.send_and_wait(
                    f"{nudge.settings.app_id}-input", key=item["person"].encode(), value=json.dumps(item).encode()
                )
        finally:
            await producer.stop()

    asyncio.run(produce())
    wait_for(lambda: len(outbox(nudge)) >= len(predicted), 90, what="the live stack's sends")
    time.sleep(4)  # a send the simulation did not predict would show up by now
    assert outbox(nudge) == predicted
