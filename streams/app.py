"""The Faust app, its topics and its tables, built from `Settings` by `build_app`.

Nothing is created at import: `build_app(settings)` returns a `Runtime` holding the app and
everything agents attach to, and each agent module's `register(runtime)` adds its agents and
timers (`streams/worker.py` wires them). All topics that feed the `people` table are
co-partitioned with it: keyed by person id, same partition count.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import faust
from faust.transport.drivers.aiokafka import Producer as AiokafkaProducer
from faust.types import TopicT
from faust.types.tables import TableT

from streams.settings import Settings

# RocksDB's defaults are per database (64 MiB write buffers x 3, a 2 GiB block cache) and
# Faust opens one database per table partition: cap them, or resident memory grows with data.
# Measured with a million people (bench `state`): these keep the worker under 1 GiB.
ROCKSDB_OPTIONS = {
    "write_buffer_size": 8 * 2**20,
    "max_write_buffer_number": 2,
    "block_cache_size": 16 * 2**20,
}


class IdempotentProducer(AiokafkaProducer):
    """Faust's producer with idempotence on (Faust turns it on only for exactly-once).

    Relies on `faust.transport.drivers.aiokafka.Producer._settings_extra` returning the extra
    aiokafka producer settings (faust-streaming 0.15.3).
    """

    def _settings_extra(self) -> Mapping[str, Any]:
        return {**super()._settings_extra(), "enable_idempotence": True}


@dataclass(frozen=True)
class Runtime:
    """The built Faust app and the topics and tables its agents share."""

    settings: Settings
    app: faust.App
    input_topic: TopicT
    sends_topic: TopicT
    projections_topic: TopicT
    dead_letter_topic: TopicT
    broadcasts_topic: TopicT
    # person id -> the person's hot record (agents/person/state_codec.py), written only at
    # checkpoints by the person agent (agents/person/checkpoint.py).
    people: TableT


def raw_schema() -> faust.Schema:
    """Keys and values as bytes: the codecs in `schemas/wire.py` own the format.

    A new object each time: Faust mutates a schema it is given (Schema.update), so one shared
    instance ends up with another owner's serializers.
    """
    return faust.Schema(
        key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
    )


def build_app(settings: Settings) -> Runtime:
    """A Faust app configured from `settings`, with its topics and the people table."""
    app = faust.App(
        settings.app_id,
        broker=f"kafka://{settings.kafka_bootstrap}",
        store="rocksdb://",
        # Namespaced by app id: two deployments sharing a data dir never open each other's state.
        datadir=str(settings.data_dir / settings.app_id),
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        # A worker keeping a standby copy of a partition takes it over without restoring it.
        table_standby_replicas=settings.standby_replicas,
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
        web_bind=settings.worker_web_host,
        # The worker's web port serves health and metrics only: Faust's table and router views
        # would hand out any person's state to whoever can reach the port.
        web_tables_enabled=False,
        web_router_enabled=False,
        web_graph_enabled=False,
        web_stats_enabled=False,
        autodiscover=False,
    )

    # Faust's own sends (wakes, outcomes, scans) are idempotent too: a retried send after a
    # broker hiccup is never written twice.
    app.producer = IdempotentProducer(app.transport, loop=app.loop, beacon=app.beacon)

    def topic(name: str, partitions: int) -> TopicT:
        return app.topic(
            name, schema=raw_schema(), partitions=partitions,
            replicas=settings.replication_factor, config=settings.topic_config,
        )

    people = app.Table(
        "people",
        partitions=settings.partitions,
        default=None,
        # `bytes` gives the table *and its changelog topic* raw serializers: a worker restoring
        # a partition it has no local state for reads the changelog through that topic's schema.
        key_type=bytes,
        value_type=bytes,
        options=ROCKSDB_OPTIONS,
        # Faust makes changelogs compacted (cleanup.policy=compact): one record per person kept.
        extra_topic_configs=settings.topic_config,
    )
    return Runtime(
        settings=settings,
        app=app,
        input_topic=topic(settings.input_topic, settings.partitions),
        sends_topic=topic(settings.sends_topic, settings.partitions),
        projections_topic=topic(settings.projections_topic, settings.partitions),
        dead_letter_topic=topic(settings.dead_letter_topic, 1),
        # Partition p of it goes to the worker owning partition p of the people table.
        broadcasts_topic=topic(settings.broadcasts_topic, settings.partitions),
        people=people,
    )
