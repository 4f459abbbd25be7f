"""Which input messages the person agent may apply: each partition's, in offset order, none skipped.

The consumer offsets the agent lets Faust commit must never pass an input nobody applied. Faust
does not guarantee that on its own around rebalances: its consumer forgets a partition's acks
and committed offset when the partition is revoked (before the agent checkpoints), and its
fetch loop can deliver the tail of a batch fetched under the previous assignment after the
partition was sought back to its committed offset, then drop the re-fetched messages as
"already read". Acknowledged, such a tail commits over the inputs in between.

So the agent keeps, per owned input partition, the next offset it expects: learnt from the
group's committed offset when the partition is assigned, advanced by one per applied message.
A message below it was applied already (skip it); a message above it means messages went
missing in between: skip it too, and rewind the consumer to the expected offset.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import Enum


class Order(Enum):
    """What to do with one message."""

    APPLY = "apply"  # the next one expected: apply it
    REPLAYED = "replayed"  # below the next one expected: applied before, skip
    AHEAD = "ahead"  # above it: the ones in between went missing; skip and rewind
    UNKNOWN = "unknown"  # the partition's start is not known yet (just assigned)


class InputOrder:
    """The next offset expected on each owned input partition."""

    def __init__(self) -> None:
        self._next: dict[int, int] = {}

    def start(self, partition: int, offset: int) -> None:
        """Expect `offset` next on `partition` (its committed offset, when it is assigned)."""
        self._next[partition] = offset

    def forget(self, partitions: Iterable[int]) -> None:
        """The partitions were revoked: their start is learnt again on the next assignment."""
        for partition in partitions:
            self._next.pop(partition, None)

    def expected(self, partition: int) -> int | None:
        """The next offset expected on `partition`, or None before its start is known."""
        return self._next.get(partition)

    def admit(self, partition: int, offset: int) -> Order:
        """Classify one message; an applied one moves the partition's expectation past it."""
        expected = self._next.get(partition)
        if expected is None:
            return Order.UNKNOWN
        if offset == expected:
            self._next[partition] = offset + 1
            return Order.APPLY
        return Order.REPLAYED if offset < expected else Order.AHEAD
