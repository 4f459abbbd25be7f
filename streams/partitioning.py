"""Which partition a person's inputs live on: Kafka's default partitioner, computed here."""

from __future__ import annotations

from aiokafka.partitioner import murmur2


def partition_for(person: str, partitions: int) -> int:
    """The partition Kafka's default partitioner (murmur2, as the Java client) gives `person`."""
    return (murmur2(person.encode()) & 0x7FFFFFFF) % partitions
