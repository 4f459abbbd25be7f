"""Erasure on a running deployment: a person signs up over the Track API, their welcome bounces
(so their address sits in error texts and on the suppression list), an operator runs
`nudge gdpr delete`; afterwards no table or column of the deployment holds their id, address
or attribute values, the deletion is in the activity log without them, and another person's
data is as it was."""

from __future__ import annotations

import asyncio
import json

import asyncpg
import pytest
from click.testing import CliRunner

from deploy.local.runner import NudgeProcesses, wait_for
from streams.cli import cli
from streams.database import connect

pytestmark = pytest.mark.integration

PROJECT = {
    "campaigns/welcome.yaml": "id: welcome\ntrigger: {event: signed_up}\nsteps:\n  - send: welcome\n",
    "templates/welcome.html": (
        '---\nsubject: "Welcome, {{ customer.first_name }}!"\n---\n'
        "<p>Hello {{ customer.first_name }} from {{ customer.city }}, code {{ event.coupon }}.</p>\n"
    ),
}
ZEB, ZEB_EMAIL = "zeb-7f3a", "zeb.quill@zmail.test"
ZEB_TRACES = (ZEB, ZEB_EMAIL, "Zebulon", "Quixotown", "ZEBU-77")


def query(nudge: NudgeProcesses, sql: str, *args):
    async def run():
        conn = await connect(nudge.settings.database_url, nudge.settings.app_id)
        try:
            return await conn.fetchval(sql, *args)
        finally:
            await conn.close()
    return asyncio.run(run())


def traces(nudge: NudgeProcesses, needles: tuple[str, ...]) -> list[str]:
    """Every table and column of the deployment's schema that holds one of `needles` (any case)."""
    async def run() -> list[str]:
        conn: asyncpg.Connection = await connect(nudge.settings.database_url, nudge.settings.app_id)
        try:
            found = []
            for c in await conn.fetch(
                "SELECT table_name, column_name FROM information_schema.columns"
                " WHERE table_schema = current_schema() ORDER BY table_name, column_name"
            ):
                table, column = c["table_name"], c["column_name"]
                for needle in needles:
                    hits = await conn.fetchval(
                        f'SELECT count(*) FROM "{table}" WHERE strpos(lower("{column}"::text), lower($1)) > 0',
                        needle,
                    )
                    if hits:
                        found.append(f"{table}.{column} holds {needle!r} ({hits} rows)")
            return found
        finally:
            await conn.close()
    return asyncio.run(run())


def sign_up(nudge: NudgeProcesses, person: str, email: str, first_name: str, city: str, coupon: str) -> None:
    assert nudge.request("PUT", f"/api/v1/customers/{person}",
                         {"email": email, "first_name": first_name, "city": city})[0] == 200
    assert nudge.request("POST", f"/api/v1/customers/{person}/events",
                         {"name": "signed_up", "data": {"coupon": coupon}})[0] == 200


def test_gdpr_delete_leaves_no_trace_of_the_person_in_any_table(start_nudge, inbox):
    inbox.rcpt_replies[ZEB_EMAIL] = "550 5.1.1 <zeb.quill@zmail.test>: no such user"
    nudge: NudgeProcesses = start_nudge(PROJECT)
    sign_up(nudge, ZEB, ZEB_EMAIL, "Zebulon", "Quixotown", "ZEBU-77")
    sign_up(nudge, "olga-19", "olga@omail.test", "Olga", "Oslo", "OLGA-1")
    wait_for(lambda: len(inbox.received) == 1, 60, what="Olga's welcome")
    # The bounce is in: outbox, timeline, suppression list, and back in Zeb's activity.
    wait_for(lambda: query(nudge, "SELECT count(*) FROM suppressions") == 1, 60, what="the hard bounce")
    wait_for(lambda: query(nudge, "SELECT count(*) FROM activity WHERE person = $1 AND kind = 'delivery'", ZEB),
             60, what="the bounce in Zeb's activity")
    before = traces(nudge, ZEB_TRACES)
    assert {t.split(".")[0] for t in before} >= {"people", "activity", "outbox", "message_events", "suppressions"}
    olga = CliRunner().invoke(cli, ["gdpr", "export", "olga-19"], env=nudge.env)
    assert olga.exit_code == 0, olga.output

    deleted = CliRunner().invoke(cli, ["gdpr", "delete", ZEB, "--yes"], env=nudge.env)
    assert deleted.exit_code == 0, deleted.output
    assert f"{ZEB} erased" in deleted.output
    assert traces(nudge, ZEB_TRACES) == []
    # The deletion itself stays in the activity log, under a marker instead of the person.
    marker = query(nudge, "SELECT person FROM activity WHERE kind = 'delete'")
    assert marker is not None and marker.startswith("deleted:")
    still = CliRunner().invoke(cli, ["gdpr", "export", "olga-19"], env=nudge.env)
    assert json.loads(still.output) == json.loads(olga.output)
