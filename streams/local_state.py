"""Before a worker starts: local table state brought in line with its changelog, in bulk.

Two things happen here, before Faust's own recovery:

- restoring in bulk: Faust applies a changelog record by record (about 6,000 records/s here,
  so a million people took about three minutes). A partition whose local state is far behind
  its changelog, or missing (a new or replaced worker), is first read with a plain consumer and
  written in large RocksDB batches (with the changelog offset Faust persists), so Faust's
  recovery finds only what arrived since;
- dropping what the changelog no longer backs (below).

A data dir reused after the topics were deleted (or pointed at another cluster) holds RocksDB
partitions whose persisted changelog offset is at or past the changelog's end. Faust would
either crash at recovery (`ConsistencyError`: "persisted offset ... higher than the last
offset in that topic") or, for an empty changelog, silently serve state Kafka knows nothing
of. Such a partition is removed here, with a message saying why, and Faust rebuilds it from
the changelog like a new worker would.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from rocksdict import AccessType, Options, Rdict, WriteBatch

from streams.app import Runtime
from streams.kafka_offsets import end_offsets


def _say(message: str) -> None:
    # Before Faust starts, its logging is not set up yet: straight to the worker's output.
    print(f"[nudge worker] {message}", file=sys.stderr, flush=True)

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


def stale(offset: int | None, end: int) -> bool:
    """Whether a partition that applied up to `offset` is ahead of a changelog ending at `end`."""
    return offset is not None and offset >= end


def drop_stale_partitions(runtime: Runtime) -> list[Path]:
    """Remove the people partitions the changelog does not back; return what was removed."""
    table = runtime.people
    # Faust types Table.data as a MutableMapping; on a RocksDB table it is the rocksdict Store.
    store: Any = table.data
    topic = table.changelog_topic.get_topic_name()
    ends = asyncio.run(end_offsets(runtime.settings.kafka_bootstrap, topic))
    removed = []
    for partition in range(runtime.settings.partitions):
        path = Path(store.partition_path(partition))
        if not path.exists():
            continue
        offset = persisted_offset(path)
        end = ends.get(partition, 0)
        if stale(offset, end):
            _say(
                f"local state {path} has applied changelog offset {offset} but {topic}[{partition}] "
                f"ends at {end} (topics deleted, or the data dir reused for another deployment): "
                "removing it; the partition is rebuilt from the changelog"
            )
            shutil.rmtree(path)
            removed.append(path)
    return removed


_BATCH_RECORDS = 20_000


async def _restore_partition(bootstrap: str, topic: str, partition: int, start: int, end: int, db: Rdict) -> int:
    """Copy changelog records [start, end) of one partition into `db`; return how many."""
    tp = TopicPartition(topic, partition)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, max_partition_fetch_bytes=8 * 2**20,
        fetch_max_bytes=32 * 2**20,
    )
    await consumer.start()
    applied = 0
    try:
        consumer.assign([tp])
        consumer.seek(tp, start)
        last = start - 1
        while last < end - 1:
            batch = WriteBatch(raw_mode=True)
            records = (await consumer.getmany(tp, timeout_ms=2000, max_records=_BATCH_RECORDS)).get(tp, [])
            if not records:
                if await consumer.position(tp) >= end:
                    break
                continue
            for record in records:
                if record.offset >= end:
                    break
                if record.value is None:
                    batch.delete(record.key)
                else:
                    batch.put(record.key, record.value)
                last = record.offset
                applied += 1
            batch.put(OFFSET_KEY, str(last).encode())
            db.write(batch)
    finally:
        await consumer.stop()
    return applied


def restore_in_bulk(runtime: Runtime) -> dict[int, int]:
    """Bring far-behind or missing people partitions up to their changelog's end.

    On an empty data dir every partition is restored (the worker cannot know yet which it
    will own; the others are then warm copies for failover). Returns records applied per
    partition restored.
    """
    table = runtime.people
    # Faust types Table.data as a MutableMapping; on a RocksDB table it is the rocksdict Store.
    store: Any = table.data
    topic = table.changelog_topic.get_topic_name()
    settings = runtime.settings
    ends = asyncio.run(end_offsets(settings.kafka_bootstrap, topic))
    paths = {p: Path(store.partition_path(p)) for p in range(settings.partitions)}
    fresh = not any(path.exists() for path in paths.values())
    restored: dict[int, int] = {}
    for partition, path in paths.items():
        end = ends.get(partition, 0)
        if not path.exists() and not fresh:
            continue  # another worker's partition: Faust restores it if it ever comes here
        local = persisted_offset(path) if path.exists() else None
        start = 0 if local is None else local + 1
        if end - start < settings.restore_bulk_min_records:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        db = store.rocksdb_options.open(path)
        try:
            started = time.monotonic()
            count = asyncio.run(_restore_partition(settings.kafka_bootstrap, topic, partition, start, end, db))
        finally:
            db.close()
        restored[partition] = count
        _say(f"restored {count} changelog records of {topic}[{partition}] in bulk in "
             f"{time.monotonic() - started:.1f} s")
    return restored

