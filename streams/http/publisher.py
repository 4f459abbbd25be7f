"""Publishes accepted inputs to the input topic, one envelope per partition per flush.

Faust pays its cost per Kafka message, not per input (docs/architecture.md, "Speed"), so inputs that
arrive together are grouped by the partition their person id maps to, with the topic's own
partitioner (murmur2, as Kafka's Java client and aiokafka use), and sent as one envelope.
`publish` returns only when Kafka has acknowledged the inputs: HTTP 200 means durable. The
producer waits for every in-sync replica (acks=all, idempotent); when Kafka cannot take the
write in time (too few brokers for min.insync.replicas), `publish` raises and the API answers
503: nothing is acknowledged that could be lost. An input refused that way may still arrive
once the brokers are back (a retry with the same event `id` is deduplicated).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaTimeoutError, TopicAlreadyExistsError

from schemas.errors import ConfigurationError
from schemas.inputs import Input
from schemas.wire import encode_envelope
from streams.partitioning import partition_for

# How the HTTP routes hand inputs to Kafka: `InputPublisher.publish`, or a list in unit tests.
Publish = Callable[[list[Input]], Awaitable[None]]


class TopicReplicationError(ConfigurationError, RuntimeError):
    """An existing topic has fewer replicas than NUDGE_REPLICATION_FACTOR asks for: raise the topic's
    replication with kafka-reassign-partitions, or lower the setting."""


async def ensure_topic(
    bootstrap: str,
    topic: str,
    partitions: int,
    *,
    replication_factor: int = 1,
    config: dict[str, str] | None = None,
) -> int:
    """Create `topic` if it is missing (with `replication_factor` and `config`); return its partition count.

    An existing topic with fewer replicas than asked raises TopicReplicationError: writes to it
    would be acknowledged by fewer brokers than the deployment promises.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        try:
            await admin.create_topics(
                [NewTopic(topic, num_partitions=partitions, replication_factor=replication_factor,
                          topic_configs=dict(config or {}))]
            )
        except TopicAlreadyExistsError:
            pass
        found = await _partitions(admin, topic)
        replicas = min(len(p["replicas"]) for p in found)
        if replicas < replication_factor:
            raise TopicReplicationError(
                f"topic {topic} has {replicas} replica(s) per partition but "
                f"NUDGE_REPLICATION_FACTOR is {replication_factor}; reassign its partitions "
                f"(kafka-reassign-partitions) or lower the setting"
            )
        return len(found)
    finally:
        await admin.close()


async def _partitions(admin: AIOKafkaAdminClient, topic: str, timeout: float = 30.0) -> list[dict]:
    # A broker that has not yet heard of a just-created topic describes it with no partitions.
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        found = (await admin.describe_topics([topic]))[0]["partitions"]
        if found or loop.time() > deadline:
            if not found:
                raise KafkaTimeoutError(f"topic {topic} has no partitions {timeout:g}s after creation")
            return found
        await asyncio.sleep(0.1)


class InputPublisher:
    """Batches inputs for `linger` seconds and sends one envelope per partition."""

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        partitions: int,
        *,
        linger: float = 0.002,
        max_batch: int = 1000,
        replication_factor: int = 1,
        topic_config: dict[str, str] | None = None,
        timeout: float = 10.0,
    ) -> None:
        self._replication_factor = replication_factor
        self._topic_config = dict(topic_config or {})
        self._timeout = timeout
        self._bootstrap = bootstrap
        self._topic = topic
        self._wanted_partitions = partitions
        self._partitions = partitions
        self._linger = linger
        self._max_batch = max_batch
        self._pending: list[tuple[Input, asyncio.Future[None]]] = []
        self._flush_handle: asyncio.TimerHandle | None = None
        self._producer: AIOKafkaProducer | None = None
        self._in_flight: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Connect, and create the input topic if nobody has yet."""
        self._partitions = await ensure_topic(
            self._bootstrap, self._topic, self._wanted_partitions,
            replication_factor=self._replication_factor, config=self._topic_config,
        )
        self._producer = AIOKafkaProducer(
            bootstrap_servers=self._bootstrap,
            acks="all",
            enable_idempotence=True,
            linger_ms=0,
            max_request_size=4 * 1024 * 1024,
        )
        await self._producer.start()
        # Wait for the new topic's metadata here, not inside the first request's deadline.
        await self._producer.partitions_for(self._topic)

    async def stop(self) -> None:
        """Flush what is pending, then disconnect."""
        self._flush_now()
        if self._in_flight:
            await asyncio.gather(*self._in_flight, return_exceptions=True)
        if self._producer is not None:
            await self._producer.stop()

    async def reachable(self) -> str:
        """For `/ready`: the input topic's partitions, fetched from the brokers now."""
        assert self._producer is not None, "InputPublisher.start() was not awaited"
        if not await self._producer.client.force_metadata_update():
            raise OSError(f"no Kafka broker at {self._bootstrap} answered a metadata request")
        partitions = self._producer.client.cluster.partitions_for_topic(self._topic) or set()
        return f"{self._topic}: {len(partitions)} partitions"

    async def publish(self, inputs: list[Input]) -> None:
        """Queue `inputs` for the next flush and wait until Kafka has them.

        Raises KafkaTimeoutError when Kafka has not acknowledged them within the timeout.
        """
        loop = asyncio.get_running_loop()
        futures = []
        for item in inputs:
            future: asyncio.Future[None] = loop.create_future()
            self._pending.append((item, future))
            futures.append(future)
        if len(self._pending) >= self._max_batch:
            self._flush_now()
        elif self._flush_handle is None:
            self._flush_handle = loop.call_later(self._linger, self._flush_now)
        acknowledged = asyncio.gather(*futures)
        try:
            # Shielded: the send goes on (Kafka may still take it); only this request gives up.
            await asyncio.wait_for(asyncio.shield(acknowledged), self._timeout)
        except TimeoutError:
            acknowledged.add_done_callback(_consume_result)
            raise KafkaTimeoutError(
                f"Kafka did not acknowledge the input within {self._timeout:g}s "
                f"(brokers down, or fewer in sync than min.insync.replicas)"
            ) from None

    def _flush_now(self) -> None:
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        if not self._pending:
            return
        batch, self._pending = self._pending, []
        task = asyncio.get_running_loop().create_task(self._send(batch))
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)

    async def _send(self, batch: list[tuple[Input, asyncio.Future[None]]]) -> None:
        assert self._producer is not None, "InputPublisher.start() was not awaited"
        groups: dict[int, list[tuple[Input, asyncio.Future[None]]]] = defaultdict(list)
        for item, future in batch:
            groups[partition_for(item.person, self._partitions)].append((item, future))
        sends = []
        for partition, group in groups.items():
            value = encode_envelope(item for item, _ in group)
            key = group[0][0].person.encode()
            sends.append(
                self._producer.send_and_wait(
                    self._topic, value=value, key=key, partition=partition
                )
            )
        results = await asyncio.gather(*sends, return_exceptions=True)
        for group, result in zip(groups.values(), results, strict=True):
            for _, future in group:
                if future.done():
                    continue
                if isinstance(result, BaseException):
                    future.set_exception(result)
                else:
                    future.set_result(None)


def _consume_result(future: asyncio.Future[Any]) -> None:
    # A send this request gave up on may fail later; nobody awaits it any more.
    if not future.cancelled():
        future.exception()
