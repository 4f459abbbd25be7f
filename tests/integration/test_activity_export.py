"""What the live stack recorded comes back out: `nudge activity --export` writes the inputs it
applied, `nudge simulate --events` replays that file to the same message ids, and `nudge preview`
renders with the person rebuilt from them (history included)."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from click.testing import CliRunner

from deploy.local.runner import NudgeProcesses, wait_for
from streams.cli.activity import activity
from streams.cli.preview import preview
from streams.cli.simulate import simulate
from streams.database import connect

pytestmark = pytest.mark.integration

PROJECT = {
    "campaigns/welcome.yaml": (
        "id: welcome\ntrigger: {event: signed_up}\nsteps:\n  - send: welcome\n  - wait: 2s\n  - send: onboarding\n"
    ),
    "templates/welcome.html": "---\nsubject: Welcome {{ customer.first_name }}\n---\n<p>{{ event.plan }}</p>\n",
    "templates/onboarding.html": (
        "---\nsubject: Still to do\n---\n<p>{{ event.plan }}:{% for step in ['invite', 'connect', 'report'] %}"
        "{% unless performed('step_done', step: step) %} {{ step }}{% endunless %}{% endfor %}</p>\n"
    ),
}


def sql(nudge: NudgeProcesses, query: str) -> list[tuple]:
    async def run() -> list[tuple]:
        conn = await connect(nudge.settings.database_url, nudge.settings.app_id)
        try:
            return [tuple(r) for r in await conn.fetch(query)]
        finally:
            await conn.close()

    return asyncio.run(run())


def test_exported_inputs_replay_to_the_same_messages_and_preview_the_person(start_nudge, tmp_path: Path) -> None:
    nudge = start_nudge(PROJECT, api=False)
    t = time.time() - 20
    inputs = [
        {"kind": "identify", "person": "ana", "at": t, "attributes": {"email": "ana@example.com", "first_name": "Ana"}},
        {"kind": "track", "person": "ana", "at": t + 1, "name": "signed_up", "data": {"plan": "trial"}},
        {"kind": "track", "person": "ana", "at": t + 2, "name": "step_done", "data": {"step": "invite"}},
        {"kind": "track", "person": "ana", "at": t + 3, "name": "step_done", "data": {"step": "connect"}},
    ]

    async def produce() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=nudge.env["NUDGE_KAFKA_BOOTSTRAP"])
        await producer.start()
        try:
            for item in inputs:
                await producer.send_and_wait(f"{nudge.settings.app_id}-input", key=b"ana", value=json.dumps(item).encode())
        finally:
            await producer.stop()

    asyncio.run(produce())
    wait_for(lambda: len(sql(nudge, "SELECT 1 FROM outbox")) == 2, 90, what="both emails in the outbox")
    wait_for(lambda: len(sql(nudge, "SELECT 1 FROM activity WHERE input IS NOT NULL")) >= len(inputs), 60,
             what="the recorded inputs")

    env = {k: v for k, v in nudge.env.items() if k.startswith("NUDGE_")}
    exported = tmp_path / "ana.jsonl"
    result = CliRunner().invoke(activity, ["--export", "-o", str(exported)], env=env)
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in exported.read_text().splitlines()]
    # What the producer wrote, in order; the delivery loop's outcomes ("sent") are inputs too.
    produced = [(i["kind"], i.get("name"), i["at"]) for i in lines if i["kind"] != "delivery"]
    assert produced == [(i["kind"], i.get("name"), i["at"]) for i in inputs]
    assert {i["kind"] for i in lines} <= {"identify", "track", "delivery"}

    report = json.loads(CliRunner().invoke(
        simulate, ["--campaigns", env["NUDGE_CAMPAIGNS_DIR"], "--events", str(exported), "--json"], env=env,
    ).output)
    replayed = {h["message_id"] for h in report["timelines"]["ana"] if h["kind"] == "send"}
    assert replayed == {row[0] for row in sql(nudge, "SELECT message_id FROM outbox")}

    shown = CliRunner().invoke(preview, ["onboarding", "--person", "ana", "--journey", "welcome", "--part", "html"], env=env)
    assert shown.exit_code == 0, shown.output
    assert shown.output.strip() == "<p>trial: report</p>"
