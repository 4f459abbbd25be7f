"""The Faust app, its topics and its tables, configured from `Settings`.

Agents live in `agents/*/agent.py` and attach to the objects defined here. All topics that feed
the `people` and `timers` tables are co-partitioned: keyed by person id, same partition count.
"""

from __future__ import annotations

import faust

from streams.settings import Settings

settings = Settings.from_env()

app = faust.App(
    settings.app_id,
    broker=f"kafka://{settings.kafka_bootstrap}",
    store="rocksdb://",
    datadir=str(settings.data_dir),
    topic_partitions=settings.partitions,
    topic_replication_factor=1,
    table_standby_replicas=0,
    processing_guarantee="at_least_once",
    # Shutdown must not wait for buffers to drain: a replay after restart is harmless.
    stream_wait_empty=False,
    broker_commit_every=1000,
    broker_commit_interval=0.5,
    producer_linger=0.002,
    consumer_auto_offset_reset="earliest",
    # A killed worker's partitions move only when its session expires: keep that short so
    # a restarted (or surviving) worker takes over, and overdue timers fire, within seconds.
    broker_session_timeout=10.0,
    broker_heartbeat_interval=1.0,
    web_port=settings.worker_web_port,
    web_bind="127.0.0.1",
    autodiscover=False,
)

# Raw bytes everywhere: the codecs in schemas/wire.py own the format, so producers outside
# Python (and the dead-letter topic) see plain JSON.
def _raw() -> faust.Schema:
    # A new object each time: Faust mutates a schema it is given (Schema.update), so one
    # shared instance ends up with another owner's serializers.
    return faust.Schema(
        key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
    )


def _raw_topic(name: str, partitions: int) -> faust.TopicT:
    return app.topic(name, schema=_raw(), partitions=partitions)


input_topic = _raw_topic(settings.input_topic, settings.partitions)
sends_topic = _raw_topic(settings.sends_topic, settings.partitions)
projections_topic = _raw_topic(settings.projections_topic, settings.partitions)
dead_letter_topic = _raw_topic(settings.dead_letter_topic, 1)

# RocksDB's defaults are per database (64 MiB write buffers x 3, a 2 GiB block cache) and Nudge
# opens one database per table per partition: cap them, or resident memory grows with the data.
_ROCKSDB = {
    "write_buffer_size": 16 * 2**20,
    "max_write_buffer_number": 2,
    "block_cache_size": 64 * 2**20,
}

# person id -> PersonState JSON. One write per person per Kafka message (DESIGN.md, "Speed").
# `bytes` types give the table *and its changelog topic* raw serializers: a worker restoring
# a partition it has no local state for reads the changelog through that topic's schema.
people = app.Table(
    "people",
    partitions=settings.partitions,
    default=None,
    key_type=bytes,
    value_type=bytes,
    options=_ROCKSDB,
)
# person id -> {timer id: due} JSON; small, so rebuilding the timer index on assignment
# reads far less than the people table would.
timers = app.Table(
    "timers",
    partitions=settings.partitions,
    default=None,
    key_type=bytes,
    value_type=bytes,
    options=_ROCKSDB,
)
