"""Reading where a topic ends and what a consumer group has committed on it."""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient


async def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    """The end offset of every partition of `topic` (empty when the topic does not exist)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        if topic not in await admin.list_topics():
            return {}
        [described] = await admin.describe_topics([topic])
    finally:
        await admin.close()
    partitions = [TopicPartition(topic, p["partition"]) for p in described["partitions"]]
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        return {tp.partition: offset for tp, offset in (await consumer.end_offsets(partitions)).items()}
    finally:
        await consumer.stop()


async def committed_offsets(bootstrap: str, group: str, topic: str) -> dict[int, int]:
    """What consumer group `group` (a worker's is its app id) has committed on `topic`."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    return {tp.partition: meta.offset for tp, meta in offsets.items() if tp.topic == topic and meta.offset >= 0}


async def start_offsets(bootstrap: str, group: str, topic: str, partitions: list[int]) -> dict[int, int]:
    """Where group `group` resumes each of `partitions`: its committed offset, else the log start.

    A committed offset below the log start (retention deleted what it pointed at) resumes at the
    log start, as the consumer's `earliest` reset does.
    """
    tps = [TopicPartition(topic, p) for p in partitions]
    committed = {
        p: offset for p, offset in (await committed_offsets(bootstrap, group, topic)).items() if p in partitions
    }
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        beginnings = await consumer.beginning_offsets(tps)
    finally:
        await consumer.stop()
    return {tp.partition: max(committed.get(tp.partition, 0), start) for tp, start in beginnings.items()}


async def first_record_at(bootstrap: str, topic: str, partition: int, offset: int) -> int | None:
    """The offset of the first record at or after `offset` (None when there is none yet).

    Offsets can hold no record a consumer sees: transaction markers, compacted records.
    """
    tp = TopicPartition(topic, partition)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign([tp])
        consumer.seek(tp, offset)
        records = (await consumer.getmany(tp, timeout_ms=2000, max_records=1)).get(tp, [])
        return records[0].offset if records else None
    finally:
        await consumer.stop()
