"""People on a virtual clock: apply inputs through the person agent's own shell step and fire timers
as they fall due.

Every input goes through `agents/person/shell.py` `PersonCache.apply`, the step the live
worker runs (replay guard, decision time, erasure markers, dead-lettering of a poison input), with
the Kafka record's timestamp being the input's own time: each input is decided at its `at`,
never before the person's previous decision, as the live stack decides it when it keeps up. A
timer's wake is applied at its due time, as the live timer scan delivers it. Inputs the core
emits (merges) are applied right away, at the time of the decision that emitted them. Pure: no
I/O, no wall clock.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from agents.person.campaign_set import CampaignSet
from agents.person.config import EngineConfig
from agents.person.decision_time import decision_time
from agents.person.shell import DeadLetter, PersonCache, ShellConfig
from schemas.commands import Command, EmitInput
from schemas.inputs import Input, Wake
from schemas.person import PersonState

# Called with each decision's time, its input and the commands it issued.
OnDecision = Callable[[float, Input, list[Command]], None]
# The one partition a simulation's people live on (nothing is stored; it only names the store).
_PARTITION = 0


def _nothing_stored(partition: int, key: bytes) -> bytes | None:
    return None


@dataclass
class VirtualClock:
    """Every person's state and pending timers; `feed` inputs in order, then `run_until` an end."""

    campaigns: CampaignSet
    on_decision: OnDecision
    config: EngineConfig = field(default_factory=EngineConfig)
    # The virtual time: the latest input or timer applied.
    now: float = float("-inf")
    decisions: int = 0
    dead_letters: list[DeadLetter] = field(default_factory=list)
    _heap: list[tuple[float, str, str]] = field(default_factory=list)
    _people: set[str] = field(default_factory=set)
    _cache: PersonCache = field(init=False)
    _offset: int = 0

    def __post_init__(self) -> None:
        self._cache = PersonCache(_nothing_stored, ShellConfig(engine=self.config))

    def state(self, person: str) -> PersonState | None:
        """The person as the simulation has them now (None: unknown or erased)."""
        return self._cache.state(person)

    @property
    def states(self) -> dict[str, PersonState]:
        """Everyone who exists now."""
        found = ((p, self._cache.state(p)) for p in sorted(self._people))
        return {p: s for p, s in found if s is not None}

    def feed(self, item: Input, data: dict[str, Any] | None = None) -> None:
        """Fire every timer due by the input's time, then apply the input at its time; `data`
        is the input as it was recorded (JSON), kept on its activity line."""
        self.run_until(item.at)
        self.now = max(self.now, item.at)
        self._apply(item, data, item.at)

    def run_until(self, end: float) -> None:
        """Fire, in due order, every pending timer due at or before `end`."""
        heap = self._heap
        while heap and heap[0][0] <= end:
            due, person, timer_id = heapq.heappop(heap)
            state = self._cache.state(person)
            if state is None or state.timers.get(timer_id) != due:
                continue  # fired early by a catch-up, moved, or its person is gone
            self.now = max(self.now, due)
            self._apply(Wake(person=person, at=due, timer_id=timer_id, due=due), None, due)

    def next_due(self) -> float | None:
        """When the earliest pending timer falls due (it may turn out stale), or None."""
        return self._heap[0][0] if self._heap else None

    def _apply(self, item: Input, data: dict[str, Any] | None, at: float) -> None:
        pending: list[tuple[Input, dict[str, Any] | None]] = [(item, data)]
        while pending:
            current, raw = pending.pop(0)
            person = current.person
            self._people.add(person)
            old = self._cache.state(person)
            before = dict(old.timers) if old is not None else {}
            now = decision_time(current.at, old.clock if old is not None else None, at)
            self._offset += 1
            # The record's timestamp is the input's own time: decided at `at`, as live.
            if not self._cache.apply(_PARTITION, (self._offset, 0), at, current, raw, self.campaigns):
                self._collect()
                continue
            self.decisions += 1
            commands = self._collect()
            new = self._cache.state(person)
            if new is not None:
                for timer_id, due in new.timers.items():
                    if before.get(timer_id) != due:
                        heapq.heappush(self._heap, (due, person, timer_id))
            self.on_decision(now, current, commands)
            pending.extend((c.input, None) for c in commands if isinstance(c, EmitInput))

    def _collect(self) -> list[Command]:
        """The commands of the input just applied (the shell hands them out at a checkpoint)."""
        checkpoint = self._cache.checkpoint(self.campaigns)
        self.dead_letters.extend(checkpoint.dead_letters)
        return [command for _, command in checkpoint.commands]
