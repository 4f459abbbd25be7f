"""Journey read models on a running deployment: a person who signed up waits at the 48 h step
of welcome, and the read side says so, with the steps that led there and the welcome's why."""

from __future__ import annotations

import asyncio
import time

import pytest

from agents.projector import queries
from deploy.local.runner import NudgeProcesses, wait_for
from streams.database import create_pool

pytestmark = pytest.mark.integration

PROJECT = {
    "campaigns/welcome.yaml": (
        "id: welcome\ntrigger: {event: signed_up}\nsteps:\n"
        "  - send: welcome\n  - wait: 48h\n  - send: followup\n"
    ),
    "templates/welcome.html": '---\nsubject: "Welcome"\n---\n<p>Hi</p>\n',
    "templates/followup.html": '---\nsubject: "Still there?"\n---\n<p>Hi</p>\n',
}


def read(nudge: NudgeProcesses, query, *args):
    async def run():
        pool = await create_pool(nudge.settings.database_url, nudge.settings.app_id, max_size=1)
        try:
            return await query(pool, *args)
        finally:
            await pool.close()
    return asyncio.run(run())


def test_a_person_waiting_at_the_48h_step_is_counted_there_with_the_steps_that_led_there(start_nudge, inbox):
    nudge: NudgeProcesses = start_nudge(PROJECT)
    assert nudge.request("PUT", "/api/v1/customers/ana", {"email": "ana@x.io"})[0] == 200
    signed_up = time.time()
    assert nudge.request("POST", "/api/v1/customers/ana/events", {"name": "signed_up"})[0] == 200
    wait_for(lambda: read(nudge, queries.journeys_waiting, "welcome"), 60, what="ana's journey")

    [waiting] = read(nudge, queries.journeys_waiting, "welcome")
    assert (waiting.position, waiting.journeys) == ("1", 1)
    assert waiting.next_wake_up == pytest.approx(signed_up + 48 * 3600, abs=60)
    flow = read(nudge, queries.campaign_flow, "welcome")
    assert [(s.step, s.step_kind, s.now, s.reached) for s in flow.steps] == [
        ("0", "send", 0, 1), ("1", "wait", 1, 1)]

    [journey] = read(nudge, queries.person_journeys, "ana")
    why = read(nudge, queries.journey_provenance, journey.journey_id)
    assert [m.event for m in why.milestones] == ["entered"]
    [send] = [s for s in why.steps if s.step_kind == "send"]
    message = read(nudge, queries.message_provenance, send.detail["message_id"])
    assert message is not None and message.message.template == "welcome"
    assert message.journey is not None and message.journey.journey.position == "1"
