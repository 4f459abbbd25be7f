"""Making a checkpoint durable: effects acknowledged by Kafka first, then the local state.

The order that makes a crash harmless (DESIGN.md, "Commit order"): (1) produce the commands,
the dead letters and one changelog record per person touched, and wait until Kafka has
acknowledged every one; (2) write the local RocksDB in one batch per partition, with the
changelog offsets Kafka gave; (3) only then may the consumer offsets of the inputs commit (the
agent acknowledges the inputs' Faust events after `write` returns). A crash before (2) replays
the inputs and decides them again: the same message ids, which the outbox drops. A crash after
(2) replays inputs the replay guard skips, their effects already in Kafka.

Records go out through this module's own producer (acks from all in-sync replicas, idempotent),
as one record batch per topic partition: a few microseconds a record instead of a Faust
`Topic.send` each.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable

import orjson
from aiokafka import AIOKafkaProducer

from agents.person.shell import Checkpoint, DeadLetter
from schemas.commands import CallWebhook, Command, EmitInput, SendEmail
from schemas.inputs import Input
from schemas.wire import encode_command, encode_input
from streams.partitioning import partition_for
from streams.person_store import PersonStore

# Commands per Kafka message, and their bytes at most (the broker refuses messages over 1 MiB).
COMMANDS_PER_MESSAGE = 500
MESSAGE_BYTES = 256 * 1024
# A record batch is sent once it holds this many bytes (under the broker's message.max.bytes).
BATCH_BYTES = 900 * 1024


class CheckpointFailed(RuntimeError):
    """Kafka did not acknowledge a checkpoint's records; nothing was written locally, and the
    inputs will be applied again after the worker restarts."""


class CheckpointWriter:
    """Produces a checkpoint's records, waits for them, then writes the local store."""

    def __init__(
        self,
        bootstrap: str,
        store: PersonStore,
        *,
        partitions: int,
        input_topic: str,
        sends_topic: str,
        projections_topic: str,
        dead_letter_topic: str,
    ) -> None:
        self._bootstrap = bootstrap
        self._store = store
        self._partitions = partitions
        self._input_topic = input_topic
        self._sends_topic = sends_topic
        self._projections_topic = projections_topic
        self._dead_letter_topic = dead_letter_topic
        self._producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        """Connect the producer (idempotent: a retried batch is never written twice)."""
        if self._producer is None:
            producer = AIOKafkaProducer(
                bootstrap_servers=self._bootstrap,
                acks="all",
                enable_idempotence=True,
                linger_ms=0,
                max_batch_size=BATCH_BYTES,
                max_request_size=4 * 2**20,
            )
            await producer.start()
            self._producer = producer

    async def stop(self) -> None:
        """Flush and close the producer."""
        if self._producer is not None:
            producer, self._producer = self._producer, None
            await producer.stop()

    async def write(self, checkpoint: Checkpoint, fenced: Callable[[], bool] = lambda: False) -> None:
        """Make `checkpoint` durable in commit order; CheckpointFailed if Kafka refused any of it.

        `fenced` is asked once the records are acknowledged: when it says the worker lost its
        partitions meanwhile (it was frozen), the local store is left as it was.
        """
        await self.start()
        assert self._producer is not None
        batches = _Batches(self._producer)
        changelog = self._store.changelog_topic
        for partition, key, value in checkpoint.records:
            batches.add(changelog, partition, key, value)
        self._route_commands(batches, checkpoint.commands)
        for letter in checkpoint.dead_letters:
            batches.add(self._dead_letter_topic, 0, letter.key, _dead_letter_value(letter, self._input_topic))
        try:
            offsets = await batches.send()
        except Exception as exc:
            raise CheckpointFailed(f"Kafka did not acknowledge the checkpoint: {exc!r}") from exc
        if fenced():
            raise CheckpointFailed("the worker was frozen while checkpointing: not writing its state")
        self._store.write(
            (partition, key, value, offsets[(changelog, partition)][index])
            for (partition, key, value), index in zip(
                checkpoint.records, batches.indexes(changelog, checkpoint.records), strict=True
            )
        )

    def _route_commands(self, batches: _Batches, commands: Iterable[tuple[int, Command]]) -> None:
        # Read-model commands stay on their person's partition number, so each person's
        # reach PostgreSQL in order; sends spread the same way.
        sends: dict[int, list[bytes]] = defaultdict(list)
        projections: dict[int, list[bytes]] = defaultdict(list)
        emitted: dict[int, list[Input]] = defaultdict(list)
        for partition, command in commands:
            if isinstance(command, EmitInput):
                emitted[partition_for(command.input.person, self._partitions)].append(command.input)
                continue
            target = sends if isinstance(command, (SendEmail, CallWebhook)) else projections
            target[partition].append(encode_command(command))
        for topic, grouped in ((self._sends_topic, sends), (self._projections_topic, projections)):
            for partition, encoded in grouped.items():
                for chunk in _chunks(encoded):
                    batches.add(topic, partition, None, b'{"commands":[' + b",".join(chunk) + b"]}")
        for partition, inputs in emitted.items():
            for chunk in _chunks([encode_input(i) for i in inputs]):
                batches.add(self._input_topic, partition, inputs[0].person.encode(),
                            b'{"inputs":[' + b",".join(chunk) + b"]}")


def _chunks(encoded: list[bytes]) -> Iterable[list[bytes]]:
    chunk: list[bytes] = []
    size = 0
    for item in encoded:
        if chunk and (len(chunk) >= COMMANDS_PER_MESSAGE or size + len(item) > MESSAGE_BYTES):
            yield chunk
            chunk, size = [], 0
        chunk.append(item)
        size += len(item) + 1
    if chunk:
        yield chunk


def _dead_letter_value(letter: DeadLetter, source_topic: str) -> bytes:
    return orjson.dumps(
        {
            "reason": letter.reason,
            "source_topic": source_topic,
            "value": letter.value.decode("utf-8", "replace"),
            "at": time.time(),
        }
    )


class _Batches:
    """Records grouped into aiokafka record batches per topic partition, sent together."""

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self._producer = producer
        # (topic, partition) -> batches, each a (builder, number of records).
        self._open: dict[tuple[str, int], list[list[object]]] = defaultdict(list)
        # (topic, partition) -> for each record added, (batch number, index in batch).
        self._where: dict[tuple[str, int], list[tuple[int, int]]] = defaultdict(list)

    def add(self, topic: str, partition: int, key: bytes | None, value: bytes | None) -> None:
        batches = self._open[(topic, partition)]
        if batches:
            builder, count = batches[-1]
            if builder.append(key=key, value=value, timestamp=None) is not None:  # type: ignore[attr-defined]
                batches[-1][1] = count + 1  # type: ignore[operator]
                self._where[(topic, partition)].append((len(batches) - 1, count))  # type: ignore[arg-type]
                return
        builder = self._producer.create_batch()
        if builder.append(key=key, value=value, timestamp=None) is None:
            raise CheckpointFailed(f"a record for {topic}[{partition}] is too big for one batch")
        batches.append([builder, 1])
        self._where[(topic, partition)].append((len(batches) - 1, 0))

    async def send(self) -> dict[tuple[str, int], list[int]]:
        """Send every batch, wait for all; the offset of every record, per topic partition."""
        futures: list[tuple[tuple[str, int], int, Awaitable[object]]] = []
        for (topic, partition), batches in self._open.items():
            for number, (builder, _) in enumerate(batches):
                future = await self._producer.send_batch(builder, topic, partition=partition)  # type: ignore[arg-type]
                futures.append(((topic, partition), number, future))
        results = await asyncio.gather(*(f for _, _, f in futures))
        base: dict[tuple[tuple[str, int], int], int] = {
            (tp, number): metadata.offset  # type: ignore[attr-defined]
            for (tp, number, _), metadata in zip(futures, results, strict=True)
        }
        return {
            tp: [base[(tp, number)] + index for number, index in where]
            for tp, where in self._where.items()
        }

    def indexes(self, topic: str, records: list[tuple[int, bytes, bytes | None]]) -> list[int]:
        """For each record of `topic` in the order added, its index within its partition."""
        counters: dict[int, int] = defaultdict(int)
        out = []
        for partition, _, _ in records:
            out.append(counters[partition])
            counters[partition] += 1
        return out
