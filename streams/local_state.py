"""Before a worker starts: local table state that its changelog no longer backs is dropped.

A data dir reused after the topics were deleted (or pointed at another cluster) holds RocksDB
partitions whose persisted changelog offset is at or past the changelog's end. Faust would
either crash at recovery (`ConsistencyError`: "persisted offset ... higher than the last
offset in that topic") or, for an empty changelog, silently serve state Kafka knows nothing
of. Such a partition is removed here, with a message saying why, and Faust rebuilds it from
the changelog like a new worker would.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from rocksdict import AccessType, Options, Rdict

from streams.app import Runtime

log = logging.getLogger(__name__)

# Where Faust's RocksDB store keeps the changelog offset it has applied (faust/stores/rocksdb.py).
OFFSET_KEY = b"__faust\x00offset__"


def persisted_offset(path: Path) -> int | None:
    """The changelog offset a RocksDB partition says it has applied (None: none recorded)."""
    db = Rdict(str(path), options=Options(raw_mode=True), access_type=AccessType.read_only())
    try:
        raw = db.get(OFFSET_KEY)
    finally:
        db.close()
    return int(raw) if raw is not None else None


async def changelog_ends(bootstrap: str, topic: str) -> dict[int, int]:
    """The end offset of each partition of `topic` (empty: the topic does not exist)."""
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
        return {tp.partition: end for tp, end in (await consumer.end_offsets(partitions)).items()}
    finally:
        await consumer.stop()


def stale(offset: int | None, end: int) -> bool:
    """Whether a partition that applied up to `offset` is ahead of a changelog ending at `end`."""
    return offset is not None and offset >= end


def drop_stale_partitions(runtime: Runtime) -> list[Path]:
    """Remove the people partitions the changelog does not back; return what was removed."""
    table = runtime.people
    store = table.data
    topic = table.changelog_topic.get_topic_name()
    ends = asyncio.run(changelog_ends(runtime.settings.kafka_bootstrap, topic))
    removed = []
    for partition in range(runtime.settings.partitions):
        path = Path(store.partition_path(partition))
        if not path.exists():
            continue
        offset = persisted_offset(path)
        end = ends.get(partition, 0)
        if stale(offset, end):
            log.warning(
                "local state %s has applied changelog offset %s but %s[%d] ends at %d (topics "
                "deleted, or the data dir reused for another deployment): removing it; the "
                "partition is rebuilt from the changelog", path, offset, topic, partition, end,
            )
            shutil.rmtree(path)
            removed.append(path)
    return removed
