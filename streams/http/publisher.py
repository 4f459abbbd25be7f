"""Publishes accepted inputs to the input topic, one envelope per partition per flush.

Faust pays its cost per Kafka message, not per input (docs/architecture.md, "Speed"), so inputs that
arrive together are grouped by the partition their person id maps to, with the topic's own
partitioner (murmur2, as Kafka's Java client and aiokafka use), and sent as one envelope.
`publish` returns only when Kafka has acknowledged the inputs: HTTP 200 means durable.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from schemas.inputs import Input
from schemas.wire import encode_envelope
from streams.partitioning import partition_for


async def ensure_topic(bootstrap: str, topic: str, partitions: int) -> int:
    """Create `topic` if it is missing; return its partition count."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        try:
            await admin.create_topics(
                [NewTopic(topic, num_partitions=partitions, replication_factor=1)]
            )
        except TopicAlreadyExistsError:
            pass
        described = await admin.describe_topics([topic])
        return len(described[0]["partitions"])
    finally:
        await admin.close()


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
    ) -> None:
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
            self._bootstrap, self._topic, self._wanted_partitions
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

    async def publish(self, inputs: list[Input]) -> None:
        """Queue `inputs` for the next flush and wait until Kafka has them."""
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
        await asyncio.gather(*futures)

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
        for group, result in zip(groups.values(), results):
            for _, future in group:
                if future.done():
                    continue
                if isinstance(result, BaseException):
                    future.set_exception(result)
                else:
                    future.set_result(None)
