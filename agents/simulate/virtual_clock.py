"""People on a virtual clock: apply inputs through the decision core and fire timers as they fall due.

The clock jumps from input to timer to input. Each input is decided at its own time (`at`),
never before that person's previous decision, exactly as the live shell decides it when the
Kafka record's timestamp is the input's time; a timer's wake is decided at its due time, as the
live timer scan delivers it. Inputs the core emits (merges) are applied right away, at the time
of the decision that emitted them. Pure: no I/O, no wall clock.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass, field

from agents.person.campaign_set import CampaignSet
from agents.person.config import EngineConfig
from agents.person.decision_time import decision_time
from agents.person.engine import decide
from schemas.commands import Command, EmitInput
from schemas.inputs import Input, Wake
from schemas.person import PersonState

# Called with each decision's time, its input and the commands it issued.
OnDecision = Callable[[float, Input, list[Command]], None]


@dataclass
class VirtualClock:
    """Every person's state and pending timers; `feed` inputs in order, then `run_until` an end."""

    campaigns: CampaignSet
    on_decision: OnDecision
    config: EngineConfig = field(default_factory=EngineConfig)
    states: dict[str, PersonState] = field(default_factory=dict)
    # The virtual time: the latest input or timer applied.
    now: float = float("-inf")
    decisions: int = 0
    _heap: list[tuple[float, str, str]] = field(default_factory=list)
    # Each person's last decision time: nobody is decided before their previous decision.
    _clocks: dict[str, float] = field(default_factory=dict)

    def feed(self, item: Input) -> None:
        """Fire every timer due by the input's time, then apply the input at its time."""
        self.run_until(item.at)
        self.now = max(self.now, item.at)
        self._apply(item, item.at)

    def run_until(self, end: float) -> None:
        """Fire, in due order, every pending timer due at or before `end`."""
        heap = self._heap
        while heap and heap[0][0] <= end:
            due, person, timer_id = heapq.heappop(heap)
            state = self.states.get(person)
            if state is None or state.timers.get(timer_id) != due:
                continue  # fired early by a catch-up, moved, or its person is gone
            self.now = max(self.now, due)
            self._apply(Wake(person=person, at=due, timer_id=timer_id, due=due), due)

    def next_due(self) -> float | None:
        """When the earliest pending timer falls due (it may turn out stale), or None."""
        return self._heap[0][0] if self._heap else None

    def _apply(self, item: Input, at: float) -> None:
        pending = [item]
        while pending:
            current = pending.pop(0)
            person = current.person
            # The live shell's rule, with the record's timestamp being the input's own time.
            now = decision_time(at, self._clocks.get(person), at)
            old = self.states.get(person)
            before = dict(old.timers) if old is not None else {}
            new, commands = decide(old, current, self.campaigns, now, self.config)
            self.decisions += 1
            self._clocks[person] = now
            if new is None:
                self.states.pop(person, None)
            else:
                self.states[person] = new
                for timer_id, due in new.timers.items():
                    if before.get(timer_id) != due:
                        heapq.heappush(self._heap, (due, person, timer_id))
            self.on_decision(now, current, commands)
            pending.extend(c.input for c in commands if isinstance(c, EmitInput))
