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
    web_port=settings.worker_web_port,
    web_bind="127.0.0.1",
    autodiscover=False,
)

# Raw bytes everywhere: the codecs in schemas/wire.py own the format, so producers outside
# Python (and the dead-letter topic) see plain JSON.
_RAW = faust.Schema(
    key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
)
input_topic = app.topic(
    settings.input_topic,
    schema=_RAW,
    partitions=settings.partitions,
)
sends_topic = app.topic(
    settings.sends_topic,
    schema=_RAW,
    partitions=settings.partitions,
)
projections_topic = app.topic(
    settings.projections_topic,
    schema=_RAW,
    partitions=settings.partitions,
)
dead_letter_topic = app.topic(
    settings.dead_letter_topic,
    schema=_RAW,
    partitions=1,
)

# person id -> PersonState JSON. One write per person per Kafka message (DESIGN.md, "Speed").
people = app.Table(
    "people",
    schema=_RAW,
    partitions=settings.partitions,
    default=None,
)
# person id -> {timer id: due} JSON; small, so rebuilding the timer index on assignment
# reads far less than the people table would.
timers = app.Table(
    "timers",
    schema=_RAW,
    partitions=settings.partitions,
    default=None,
)
