"""The in-memory index of due times for the people this worker owns.

The durable timers live in each person's state. This index is only a derived view for finding
who is due without scanning anyone: rebuilt from the people table when partitions are
assigned, updated by the agent after every decision. Pure: no Faust, no clock.

It keeps one entry per person, their earliest due time (a wake fires every timer due by then,
in order: `decide` catches up), so a million people waiting cost about 200 bytes each.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping

# A wake that was published but never applied is published again after this. Sends are
# awaited and a failed one is re-queued at once, so this only covers a wake lost after Kafka
# took it; it must be longer than a backlog of wakes takes to apply, or a burst of timers
# would publish itself twice.
RESEND_AFTER_SECONDS = 300.0


class TimerIndex:
    """A min-heap of (fire at, due, person, partition), checked lazily against each person's
    earliest due time."""

    def __init__(self, resend_after: float = RESEND_AFTER_SECONDS) -> None:
        self._resend_after = resend_after
        self._heap: list[tuple[float, float, str, int]] = []
        # The truth the heap is checked against: person -> earliest due.
        self._next: dict[str, float] = {}

    def __len__(self) -> int:
        """People with a timer pending."""
        return len(self._next)

    def set_person(self, person: str, timers: Mapping[str, float], partition: int = -1) -> None:
        """Replace what the index knows of a person's timers (none: forget the person).

        `partition` is where the person lives (-1: unknown, the caller hashes the id).
        """
        if not timers:
            self._next.pop(person, None)
            return
        due = min(timers.values())
        if self._next.get(person) != due:
            self._next[person] = due
            heapq.heappush(self._heap, (due, due, person, partition))

    def rebuild(self, people: Iterable[tuple[str, Mapping[str, float]]] = (), partition: int = -1) -> None:
        """Start over from the durable timers of the people now owned."""
        self._heap, self._next = [], {}
        self.add(people, partition)

    def add(self, people: Iterable[tuple[str, Mapping[str, float]]], partition: int = -1) -> None:
        """Index more people's durable timers (one partition's, when rebuilding one by one)."""
        for person, timers in people:
            if timers:
                due = min(timers.values())
                self._next[person] = due
                self._heap.append((due, due, person, partition))
        heapq.heapify(self._heap)

    def pop_due(self, now: float, limit: int = 10_000) -> list[tuple[str, float, int]]:
        """Up to `limit` (person, due, partition) whose earliest due time is <= now.

        A popped person stays known until the agent reports their timers again; if the wake is
        lost, they come due again `resend_after` seconds later. Duplicate wakes are no-ops.
        """
        due_now: list[tuple[str, float, int]] = []
        heap, known = self._heap, self._next
        while heap and heap[0][0] <= now and len(due_now) < limit:
            _, due, person, partition = heapq.heappop(heap)
            if known.get(person) == due:
                due_now.append((person, due, partition))
                heapq.heappush(heap, (now + self._resend_after, due, person, partition))
        return due_now

    def retry(self, person: str, due: float, partition: int = -1) -> None:
        """A wake that could not be published: due again at the next `pop_due`."""
        if self._next.get(person) == due:
            heapq.heappush(self._heap, (due, due, person, partition))

    def next_due(self) -> float | None:
        """The earliest time something may fall due (possibly a stale entry), or None."""
        return self._heap[0][0] if self._heap else None
