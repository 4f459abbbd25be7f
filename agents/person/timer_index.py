"""The in-memory index of due times for the people this worker owns.

The durable timers live in each person's state. This index is only a derived view for finding
what is due without scanning anyone: rebuilt from the people table when partitions are
assigned, updated by the agent after every decision. Pure: no Faust, no clock.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping


# A wake that was published but never applied is published again after this. Sends are
# awaited and a failed one is re-indexed at once, so this only covers a wake lost after Kafka
# took it; it must be longer than a backlog of wakes takes to apply, or a burst of timers
# would publish itself twice.
RESEND_AFTER_SECONDS = 300.0


class TimerIndex:
    """A min-heap of (fire at, person, timer id, due) with lazy deletion of moved timers."""

    def __init__(self, resend_after: float = RESEND_AFTER_SECONDS) -> None:
        self._resend_after = resend_after
        self._heap: list[tuple[float, str, str, float]] = []
        # The truth the heap is checked against: person -> {timer id: due}.
        self._by_person: dict[str, dict[str, float]] = {}
        # Person -> the partition they live on, when the caller said (saves hashing their id).
        self._partition: dict[str, int] = {}
        self._count = 0

    def __len__(self) -> int:
        """Timers known (pending or fired and not yet reported gone)."""
        return self._count

    def set_person(
        self, person: str, timers: Mapping[str, float], partition: int | None = None
    ) -> None:
        """Replace what the index knows of a person's timers (empty: forget the person)."""
        known = self._by_person.get(person, {})
        self._count += len(timers) - len(known)
        if not timers:
            self._by_person.pop(person, None)
            self._partition.pop(person, None)
            return
        if partition is not None:
            self._partition[person] = partition
        for timer_id, due in timers.items():
            if known.get(timer_id) != due:
                heapq.heappush(self._heap, (due, person, timer_id, due))
        self._by_person[person] = dict(timers)

    def rebuild(
        self, people: Iterable[tuple[str, Mapping[str, float]]], partition: int | None = None
    ) -> None:
        """Start over from the durable timers of the people now owned (all of `partition`)."""
        self._heap = []
        self._by_person = {}
        self._partition = {}
        self._count = 0
        self.add(people, partition)

    def add(self, people: Iterable[tuple[str, Mapping[str, float]]], partition: int | None = None) -> None:
        """Index more people's durable timers (a partition's, when rebuilding one by one)."""
        added = []
        for person, timers in people:
            if timers:
                if partition is not None:
                    self._partition[person] = partition
                self._by_person[person] = dict(timers)
                self._count += len(timers)
                added.extend((due, person, tid, due) for tid, due in timers.items())
        self._heap.extend(added)
        heapq.heapify(self._heap)

    def pop_due(self, now: float, limit: int = 10_000) -> list[tuple[str, str, float]]:
        """Remove and return up to `limit` (person, timer id, due) whose due time is <= now.

        A popped timer stays known until the agent reports it gone; if its wake is lost, it
        comes due again `resend_after` seconds later. Duplicate wakes are no-ops downstream.
        """
        due_now: list[tuple[str, str, float]] = []
        while self._heap and self._heap[0][0] <= now and len(due_now) < limit:
            _, person, timer_id, due = heapq.heappop(self._heap)
            if self._by_person.get(person, {}).get(timer_id) == due:
                due_now.append((person, timer_id, due))
                heapq.heappush(
                    self._heap, (now + self._resend_after, person, timer_id, due)
                )
        return due_now

    def retry(self, person: str, timer_id: str, due: float) -> None:
        """A wake that could not be published: due again at the next `pop_due`."""
        if self._by_person.get(person, {}).get(timer_id) == due:
            heapq.heappush(self._heap, (due, person, timer_id, due))

    def partition_of(self, person: str) -> int | None:
        """The partition the caller said the person lives on, if it did."""
        return self._partition.get(person)

    def next_due(self) -> float | None:
        """The earliest due time in the heap (possibly a stale entry), or None."""
        return self._heap[0][0] if self._heap else None
