"""Console benchmark: every page's answer time with 100,000 people and 1,000,000 activity rows.

Seeds a fresh database (its own app id schema) with SQL (people, activity with inputs, segment
members and sampled sizes, journeys at their steps with their steps taken, outbox messages with
timelines, the event catalog, broadcasts), starts a real `nudge api` on it, logs in to the console
and times each page as a browser gets it (HTML), --rounds times, after one warm-up. Prints p50,
p95 and max per page and the slowest page. No worker is needed: the pages only read PostgreSQL.

    .venv/bin/python bench/console.py --people 100000 --activity 1000000 --rounds 20
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

from deploy.local import kafka, postgres, stack
from deploy.local.runner import NudgeProcesses, delete_topics, nudge_env
from streams.console.client import ConsoleClient
from streams.database import create_pool
from streams.migrations import apply_migrations

ROOT = Path(__file__).resolve().parents[1]
USER, PASSWORD = "bench", "bench-console-password"

# The example campaigns' ids and step paths, so the campaign page has counts on its nodes.
SEED = """
INSERT INTO people (person, email, attributes, updated_at)
SELECT 'p' || lpad(i::text, 7, '0'), 'p' || i || '@example.com',
       jsonb_build_object('first_name', 'P' || i, 'plan', (ARRAY['trial','paid','free'])[1 + i % 3],
                          'signed_up_at', 1700000000 + i),
       now() - make_interval(secs => i)
FROM generate_series(1, $1::int) AS i;

INSERT INTO activity (person, at, kind, summary, detail, input)
SELECT 'p' || lpad((1 + (i::bigint * 7919) % $1)::text, 7, '0'),
       now() - make_interval(secs => ($2::int - i)),
       k.kind,
       CASE k.kind WHEN 'track' THEN 'track event_' || (i % 40) ELSE k.kind END,
       CASE k.kind WHEN 'identify' THEN '{"attributes": {"plan": ["trial", "paid"]}}'::jsonb ELSE '{}'::jsonb END,
       CASE k.kind WHEN 'track' THEN jsonb_build_object('kind', 'track', 'name', 'event_' || (i % 40),
                                                         'data', jsonb_build_object('n', i, 'sku', 'sku-' || (i % 500)))
                   ELSE jsonb_build_object('kind', k.kind) END
FROM generate_series(1, $2::int) AS i,
     LATERAL (SELECT (ARRAY['track','track','track','identify','delivery','wake'])[1 + i % 6] AS kind) AS k;

INSERT INTO segment_members (segment, person, entered_at)
SELECT s.segment, 'p' || lpad(i::text, 7, '0'), now() - make_interval(secs => i)
FROM generate_series(1, $1::int) AS i,
     (VALUES ('inactive_trial', 3), ('vip', 10), ('everyone', 1)) AS s(segment, every)
WHERE i % s.every = 0;

INSERT INTO segment_size_samples (segment, at, members)
SELECT s, date_trunc('hour', now()) - make_interval(mins => 5 * j), 1000 + j * 3
FROM unnest(ARRAY['inactive_trial', 'vip', 'everyone']) AS s, generate_series(0, 2015) AS j;

INSERT INTO current_journeys (journey_id, person, campaign_id, campaign_version, status, position,
                              resume_at, entered_at, ended_at, end_reason, updated_at)
SELECT 'j' || i, 'p' || lpad(i::text, 7, '0'), 'welcome', 'v1',
       CASE WHEN i % 10 = 0 THEN 'exited' WHEN i % 4 = 0 THEN 'completed' ELSE 'active' END,
       CASE WHEN i % 10 = 0 OR i % 4 = 0 THEN NULL ELSE (ARRAY['1', '2.1.0', '1'])[1 + i % 3] END,
       now() + make_interval(hours => i % 48), now() - make_interval(secs => i), NULL, '', now()
FROM generate_series(1, $1::int) AS i;

INSERT INTO journey_events (journey_id, event, person, campaign_id, campaign_version, at, reason, step)
SELECT 'j' || i, e.event, 'p' || lpad(i::text, 7, '0'), 'welcome', 'v1', now() - make_interval(secs => i), '', e.step
FROM generate_series(1, $1::int) AS i,
     LATERAL (VALUES ('entered', NULL), ('exited', CASE WHEN i % 10 = 0 THEN '1' END),
                     ('completed', CASE WHEN i % 4 = 0 AND i % 10 <> 0 THEN '2.0.0' END),
                     ('converted', CASE WHEN i % 7 = 0 THEN '1' END)) AS e(event, step)
WHERE e.event = 'entered' OR e.step IS NOT NULL;

INSERT INTO journey_steps (journey_id, step, step_kind, person, campaign_id, campaign_version, at, reason, detail)
SELECT 'j' || i, s.step, s.kind, 'p' || lpad(i::text, 7, '0'), 'welcome', 'v1', now() - make_interval(secs => i), '',
       CASE WHEN s.kind = 'branch' THEN jsonb_build_object('arm', CASE WHEN i % 3 = 0 THEN 'then' ELSE 'else' END,
                                                             'condition', '{event: created_project}', 'saw', i % 3)
            ELSE '{}'::jsonb END
FROM generate_series(1, $1::int) AS i,
     (VALUES ('0', 'send'), ('1', 'wait'), ('2', 'branch')) AS s(step, kind)
WHERE s.step = '0' OR i % 2 = 0;

INSERT INTO outbox (message_id, person, to_address, template, campaign_id, campaign_version, journey_id,
                    step, command, status, created_at, sent_at)
SELECT 'm' || i, 'p' || lpad(i::text, 7, '0'), 'p' || i || '@example.com', 'welcome', 'welcome', 'v1', 'j' || i, '0',
       jsonb_build_object('kind', 'send_email', 'message_id', 'm' || i, 'person', 'p' || lpad(i::text, 7, '0'),
                          'to', 'p' || i || '@example.com', 'template', 'welcome', 'campaign_id', 'welcome',
                          'campaign_version', 'v1', 'journey_id', 'j' || i, 'step', '0', 'decided_at', 1700000000,
                          'reason', 'campaign welcome (version v1), step 0: send welcome, after event signed_up',
                          'context', jsonb_build_object('customer', jsonb_build_object('first_name', 'P' || i),
                                                        'event', jsonb_build_object('plan', 'trial'),
                                                        'event_name', 'signed_up')),
       CASE WHEN i % 50 = 0 THEN 'failed' WHEN i % 97 = 0 THEN 'queued' ELSE 'sent' END,
       now() - make_interval(secs => i), now() - make_interval(secs => i)
FROM generate_series(1, $1::int) AS i;

INSERT INTO message_events (message_id, status, at, detail)
SELECT 'm' || i, s.status, now() - make_interval(secs => i), NULL
FROM generate_series(1, $1::int) AS i,
     (VALUES ('queued', 1), ('sent', 1), ('opened', 3), ('clicked', 11)) AS s(status, every)
WHERE i % s.every = 0;

INSERT INTO event_catalog (event, type, property, json_type, first_seen, last_seen, count)
SELECT 'event_' || e, 'event', p.property, p.json_type, now() - interval '30 days', now(), 25000
FROM generate_series(0, 39) AS e, (VALUES ('', 'event'), ('n', 'number'), ('sku', 'string')) AS p(property, json_type);

INSERT INTO broadcasts (id, kind, campaign, template, segment, partitions, created_at)
SELECT 'b' || i, 'broadcast', 'welcome', 'welcome', 'vip', 4, now() - make_interval(days => i)
FROM generate_series(1, 20) AS i;
INSERT INTO broadcast_progress (broadcast, partition, scanned, enqueued, done)
SELECT 'b' || i, p, 2500, 2500, true FROM generate_series(1, 20) AS i, generate_series(0, 3) AS p;
"""


def pages(people: int, newest_activity: int) -> list[str]:
    """The pages timed: each list page, filtered and searched, and each detail page."""
    someone = f"p{people // 2:07d}"
    return [
        "/activity",
        "/activity?kind=identify",
        "/activity?event=event_7",
        f"/activity?person={someone}",
        f"/activity/feed?after={newest_activity - 5}",
        f"/activity?before={newest_activity // 2}",
        "/people",
        "/people?q=p00123",
        f"/search?q={someone}%40example.com",
        f"/people/{someone}",
        "/messages",
        "/messages?status=failed",
        f"/messages?q={someone}",
        f"/messages/m{people // 2}",
        f"/journeys/j{people // 2}",
        "/campaigns",
        "/campaigns/welcome",
        "/campaigns/welcome/steps/1",
        "/segments",
        "/segments/everyone",
        "/broadcasts",
        "/broadcasts/b1",
        "/events",
    ]


def _params(statement: str, people: int, activity: int) -> list[int]:
    """$1 is the number of people, $2 the number of activity rows."""
    if "$2" in statement:
        return [people, activity]
    return [people] if "$1" in statement else []


async def seed(dsn: str, app_id: str, people: int, activity: int) -> int:
    """Migrate and fill the deployment's schema; return the newest activity id."""
    await apply_migrations(dsn, app_id)
    pool = await create_pool(dsn, app_id, max_size=2)
    try:
        async with pool.acquire() as conn:
            for statement in (s.strip() for s in SEED.split(";\n")):
                if statement:
                    await conn.execute(statement, *_params(statement, people, activity))
            # Autovacuum keeps a live database vacuumed: index-only scans need the visibility map.
            await conn.execute("VACUUM ANALYZE")
            return int(await conn.fetchval("SELECT max(id) FROM activity"))
    finally:
        await pool.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--activity", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()

    stack.up()
    app_id = f"bc{uuid.uuid4().hex[:8]}"
    database = f"nudge_bench_{app_id}"
    dsn = postgres.create_database(database)
    try:
        run(dsn, app_id, args)
    finally:
        if not args.keep:
            postgres.drop_database(database)


def run(dsn: str, app_id: str, args: argparse.Namespace) -> None:
    """Seed, start the API, time the pages, print the table."""
    started = time.monotonic()
    newest = asyncio.run(seed(dsn, app_id, args.people, args.activity))
    print(f"seeded {args.people:,} people and {args.activity:,} activity rows in {time.monotonic() - started:.0f}s")
    load = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        env = nudge_env(app_id=app_id, database_url=dsn, smtp_url="smtp://127.0.0.1:1", data_dir=Path(tmp),
                        campaigns_dir=ROOT, kafka_bootstrap=kafka.BOOTSTRAP)
        env.update(NUDGE_CONSOLE_USER=USER, NUDGE_CONSOLE_PASSWORD=PASSWORD)
        api = NudgeProcesses(env, Path(tmp) / "logs")
        try:
            api.start_api()
            console = ConsoleClient(api.base_url, USER, PASSWORD)
            results: list[tuple[str, list[float]]] = []
            for path in pages(args.people, newest):
                status, _ = console.timed(path)  # warm-up: the plan cache and the page's template
                if status not in (200, 303):
                    sys.exit(f"{path} answered {status}")
                times = [console.timed(path)[1] for _ in range(args.rounds)]
                results.append((path, times))
        finally:
            api.stop()
            delete_topics(kafka.BOOTSTRAP, app_id)
    print(f"load average before the timing: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} ({os.cpu_count()} cores)")
    print(f"{'page':<44} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
    for path, times in results:
        ordered = sorted(times)
        p95 = ordered[max(0, int(len(ordered) * 0.95) - 1)]
        print(f"{path:<44} {statistics.median(times) * 1000:8.1f} {p95 * 1000:8.1f} {max(times) * 1000:8.1f}")
    worst = max(results, key=lambda r: statistics.median(r[1]))
    print(f"slowest page (median): {worst[0]} {statistics.median(worst[1]) * 1000:.1f} ms; "
          f"every page's p95 under 300 ms: {all(sorted(t)[max(0, int(len(t) * 0.95) - 1)] < 0.3 for _, t in results)}")


if __name__ == "__main__":
    main()
