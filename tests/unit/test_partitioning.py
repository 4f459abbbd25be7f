"""Envelopes go to the partition Kafka's default partitioner gives each person's key."""

from aiokafka.partitioner import DefaultPartitioner

from streams.partitioning import partition_for


def test_partition_for_matches_the_default_partitioner():
    partitions = list(range(4))
    for person in ["ana", "bo", "cy", "dee", "user/with/slash", "üñí"]:
        expected = DefaultPartitioner()(person.encode(), partitions, partitions)
        assert partition_for(person, 4) == expected
