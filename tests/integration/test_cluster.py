"""Nudge on a 3-broker KRaft cluster (replication factor 3, min.insync.replicas 2): one broker
down, the API keeps accepting; two down, it answers 503 and accepts nothing it could lose.

A private cluster (own folder, own ports) so stopping brokers never disturbs the shared stack.
"""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from deploy.local import kafka
from deploy.local.runner import NudgeProcesses, nudge_env
from deploy.local.stack import kafka_environment
from schemas.wire import decode_inputs
from streams.http.publisher import TopicReplicationError, ensure_topic

pytestmark = pytest.mark.integration


def _free_block(ports: int) -> int:
    for _ in range(50):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            first = sock.getsockname()[1]
        if first + ports < 65536 and all(_free(first + i) for i in range(ports)):
            return first
    raise RuntimeError("no block of free ports")


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[kafka.Cluster]:
    """Three brokers, started for this module and purged afterwards."""
    c = kafka.cluster(3, home=tmp_path_factory.mktemp("kafka-3"), first_port=_free_block(6))
    try:
        kafka.up(c)
        yield c
    finally:
        kafka.down(c)
        kafka.purge(c)


@pytest.fixture(scope="module")
def api(cluster: kafka.Cluster, database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[NudgeProcesses]:
    """The API on the cluster, with production's replication and a short publish timeout."""
    root = tmp_path_factory.mktemp("cluster-api")
    env = nudge_env(
        app_id=f"c{uuid.uuid4().hex[:10]}", database_url=database_url, smtp_url="smtp://127.0.0.1:1",
        data_dir=root / "data", campaigns_dir=root, kafka_bootstrap=cluster.bootstrap,
    )
    # The default publish timeout (10 s) outlasts a killed broker's fencing (6 s locally).
    env.update(kafka_environment(cluster))
    processes = NudgeProcesses(env, root / "logs")
    processes.start_api(timeout=60)
    yield processes
    processes.stop()


@pytest.fixture
def all_brokers_back(cluster: kafka.Cluster) -> Iterator[None]:
    """Whatever a test stops, every broker runs again after it."""
    yield
    kafka.up(cluster)


def _track(api: NudgeProcesses, person: str, event_id: str) -> int:
    status, _ = api.request(
        "POST", f"/api/v1/customers/{person}/events", {"name": "probe", "id": event_id}
    )
    return status


async def _event_ids(bootstrap: str, topic: str) -> set[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = (await admin.describe_topics([topic]))[0]["partitions"]
    finally:
        await admin.close()
    partitions = [TopicPartition(topic, p["partition"]) for p in described]
    assert partitions, f"no partitions of {topic}"
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        found: set[str] = set()
        while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
            batch = await consumer.getmany(timeout_ms=1000)
            for records in batch.values():
                for record in records:
                    found.update(i.event_id for i in decode_inputs(record.value) if getattr(i, "event_id", None))
        return found
    finally:
        await consumer.stop()


async def test_topics_are_created_with_three_replicas_two_in_sync(cluster: kafka.Cluster) -> None:
    topic = f"replicated-{uuid.uuid4().hex[:8]}"
    partitions = await ensure_topic(
        cluster.bootstrap, topic, 4, replication_factor=3, config={"min.insync.replicas": "2"}
    )
    admin = AIOKafkaAdminClient(bootstrap_servers=cluster.bootstrap)
    await admin.start()
    try:
        described = (await admin.describe_topics([topic]))[0]["partitions"]
        configs = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
        await admin.delete_topics([topic])
    finally:
        await admin.close()
    assert partitions == 4
    assert sorted(len(p["replicas"]) for p in described) == [3, 3, 3, 3]
    entries = {name: value for name, value, *_ in configs[0].resources[0][4]}
    assert entries["min.insync.replicas"] == "2"


async def test_a_topic_with_fewer_replicas_than_asked_is_refused(cluster: kafka.Cluster) -> None:
    topic = f"thin-{uuid.uuid4().hex[:8]}"
    await ensure_topic(cluster.bootstrap, topic, 1, replication_factor=1)
    with pytest.raises(TopicReplicationError, match="NUDGE_REPLICATION_FACTOR is 3"):
        await ensure_topic(cluster.bootstrap, topic, 1, replication_factor=3)


def test_with_one_broker_down_every_input_is_accepted_and_stored(
    cluster: kafka.Cluster, api: NudgeProcesses, all_brokers_back: None
) -> None:
    kafka.stop_node(cluster.node(3), kill=True)
    ids = [f"one-down-{n}-{uuid.uuid4().hex[:6]}" for n in range(20)]
    statuses = [_track(api, f"person-{n}", event_id) for n, event_id in enumerate(ids)]
    assert statuses == [200] * len(ids)
    stored = asyncio.run(_event_ids(cluster.bootstrap, api.settings.input_topic))
    assert set(ids) <= stored


def test_with_two_brokers_down_the_api_answers_503_and_loses_nothing_it_accepted(
    cluster: kafka.Cluster, api: NudgeProcesses, all_brokers_back: None
) -> None:
    before = f"before-{uuid.uuid4().hex[:6]}"
    assert _track(api, "person-a", before) == 200
    kafka.stop_node(cluster.node(2), kill=True)
    kafka.stop_node(cluster.node(3), kill=True)
    during = [f"during-{n}-{uuid.uuid4().hex[:6]}" for n in range(3)]
    with ThreadPoolExecutor(len(during)) as pool:
        answers = list(pool.map(
            lambda n: api.request("POST", f"/api/v1/customers/p{n}/events", {"name": "probe", "id": during[n]}),
            range(len(during)),
        ))
    assert [status for status, _ in answers] == [503, 503, 503]
    assert all("retry" in body["meta"]["error"] for _, body in answers)

    kafka.up(cluster)
    after = f"after-{uuid.uuid4().hex[:6]}"
    assert _track(api, "person-b", after) == 200
    stored = asyncio.run(_event_ids(cluster.bootstrap, api.settings.input_topic))
    # Everything acknowledged is there; what was refused may or may not have arrived since.
    assert {before, after} <= stored
