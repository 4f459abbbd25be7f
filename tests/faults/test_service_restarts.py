"""PostgreSQL, then the Kafka broker, restarted under load: nothing accepted is lost or sent
twice, and the read model catches up. Each case runs its own private server (the shared stack
is never restarted)."""

from __future__ import annotations

import time
import uuid

import pytest

from deploy.local import kafka, postgres
from deploy.local.fault_counts import summary, violations

pytestmark = [pytest.mark.integration, pytest.mark.faults]


def test_postgresql_restarted_under_load_loses_nothing(
    deployment, private_postgres, size, seed, record
):
    database = postgres.create_database(f"nudge_fault_{uuid.uuid4().hex[:12]}", srv=private_postgres)
    nudge = deployment(database_url=database)
    load = nudge.load(size.rate).start()
    time.sleep(size.load_margin_seconds)
    postgres.down(private_postgres)
    time.sleep(size.restart_down_seconds)
    postgres.up(private_postgres)
    back = time.time()
    time.sleep(size.load_margin_seconds)
    stats = load.stop()

    result = nudge.count(
        f"PostgreSQL restarted ({size.restart_down_seconds:.0f}s down)", size=size, seed=seed,
        faults=1, stats=stats, since=max(back, time.time()),
    )
    record(result)
    assert violations(result, allow_exposed_duplicates=False) == [], summary(result)


@pytest.mark.parametrize("stop", ["controlled shutdown", "SIGKILL"])
def test_the_kafka_broker_restarted_under_load_loses_nothing(
    deployment, private_kafka, size, seed, record, stop
):
    # On one broker (the default) Kafka is down for a while; on a cluster
    # (NUDGE_FAULTS_BROKERS=3) one broker of three restarts and the others carry on.
    broker = private_kafka.node(1)
    nudge = deployment(kafka_cluster=private_kafka)
    load = nudge.load(size.rate).start()
    time.sleep(size.load_margin_seconds)
    kafka.stop_node(broker, kill=stop == "SIGKILL")
    time.sleep(size.restart_down_seconds)
    kafka.start_node(broker)
    kafka.wait_ready(private_kafka, (broker,))
    time.sleep(size.load_margin_seconds)
    stats = load.stop()

    result = nudge.count(
        f"Kafka broker 1 of {private_kafka.size} restarted after {stop} "
        f"({size.restart_down_seconds:.0f}s down)",
        size=size, seed=seed,
        faults=1, stats=stats, since=time.time(),
    )
    record(result)
    assert violations(result, allow_exposed_duplicates=False) == [], summary(result)
