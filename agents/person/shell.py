"""The person agent's shell step, pure: inputs in, people changed in a cache, effects collected.

Shared by the Faust agent (`agents/person/agent.py`), `nudge simulate` and the tests, so they
all apply inputs the same way:

- decode a Kafka message into its inputs (an invalid one is dead-lettered with its reason);
- skip an input already applied (the replay guard: its (offset, index) is not above the
  person's `last_position`) and drop late inputs for an erased person;
- decide it at its own time (`decision_time`, bounded by the Kafka record's timestamp, so a
  replay decides exactly as the first time did);
- keep the person in the cache, changed in place, with a journal of what was applied since the
  last checkpoint. When `decide` raises, or a person's record outgrows `max_state_bytes`, the
  person is rebuilt from the checkpointed bytes and the journal without the culprit, which is
  dead-lettered: one bad input never stops the agent or corrupts a person;
- `checkpoint()` hands out, for every person touched since the last one, one record (their
  bytes, or None for an erased person) and the commands their inputs produced, in order.

The I/O side produces those, waits for Kafka's acknowledgements, writes the local store, and
only then lets the consumer offsets commit (agents/person/checkpoint.py).
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from agents.person.campaign_set import CampaignSet
from agents.person.config import EngineConfig
from agents.person.decision_time import decision_time
from agents.person.engine import decide
from agents.person.state_codec import StateDecodeError, decode_state, encode_state
from schemas.commands import Activity, Command
from schemas.inputs import Delete, Identify, Input
from schemas.person import PersonState
from schemas.wire import InvalidInput, decode_input_items, encode_input

# Reads the store: (partition, key) -> bytes or None.
Load = Callable[[int, bytes], "bytes | None"]
Position = tuple[int, int]
_MARKER = struct.Struct(">d")


@dataclass(frozen=True)
class ShellConfig:
    """The shell's knobs: the engine's, the record's byte bound, the erasure salt."""

    engine: EngineConfig = field(default_factory=EngineConfig)
    # A record bigger than this is never written: the input that made it so is dead-lettered.
    # Well under Kafka's default 1 MiB message size.
    max_state_bytes: int = 512 * 1024
    # Keys the erasure markers: a deleted person's id is kept only as this salted hash.
    erasure_salt: bytes = b"nudge"


@dataclass(frozen=True)
class DeadLetter:
    """An input Nudge could not apply, with the reason: it goes to the dead-letter topic."""

    reason: str
    key: bytes | None
    value: bytes


@dataclass
class Tally:
    """What the cache did since it was last drained: for the worker's metrics."""

    inputs: dict[str, int] = field(default_factory=dict)
    applied: int = 0
    failed: int = 0
    commands: dict[str, int] = field(default_factory=dict)
    decide_seconds: list[float] = field(default_factory=list)

    def drain(self) -> Tally:
        """These figures, and start counting afresh."""
        out = Tally(self.inputs, self.applied, self.failed, self.commands, self.decide_seconds)
        self.inputs, self.applied, self.failed, self.commands, self.decide_seconds = {}, 0, 0, {}, []
        return out


@dataclass
class _Applied:
    input: Input
    data: dict[str, Any] | None
    now: float
    position: Position
    commands: list[Command]


@dataclass
class _Person:
    partition: int
    state: PersonState | None
    # The record as of the last checkpoint (None: nobody), to rebuild from.
    base: bytes | None
    journal: list[_Applied] = field(default_factory=list)
    # When the person was erased (known here), and whether that marker still has to be written.
    erased_at: float | None = None
    marker_dirty: bool = False


@dataclass
class Checkpoint:
    """What one checkpoint must make durable, in order: records, then the commands and letters."""

    # (partition, key, value or None): one per person touched, plus erasure markers.
    records: list[tuple[int, bytes, bytes | None]] = field(default_factory=list)
    # (the person's partition, command), each person's in the order their inputs made them.
    commands: list[tuple[int, Command]] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    # Every input applied since the last checkpoint.
    inputs: int = 0


class PersonCache:
    """The people touched since the last checkpoint, and the effects waiting for it.

    `load` reads the store; the cache never writes it. A person stays cached (decoded) after
    a checkpoint until `evict` drops them, so people active across checkpoints decode once.
    """

    def __init__(
        self, load: Load, config: ShellConfig = ShellConfig(),
        clock: Callable[[], float] | None = None,
    ) -> None:
        self._load = load
        self.config = config
        # A monotonic clock to time each decision with, for the operator's metrics (never
        # read by a decision); None: not timed.
        self._clock = clock
        self.tally = Tally()
        self._people: dict[str, _Person] = {}
        self._dirty: dict[str, _Person] = {}
        self._dead_letters: list[DeadLetter] = []
        self._inputs = 0
        # Late inputs dropped because their person was erased after they happened.
        self.dropped_late = 0

    def __len__(self) -> int:
        return len(self._people)

    @property
    def pending(self) -> int:
        """Inputs applied since the last checkpoint."""
        return self._inputs

    def state(self, person: str) -> PersonState | None:
        """The person as the cache has them now (None: unknown, erased or not loaded)."""
        entry = self._people.get(person)
        return entry.state if entry is not None else None

    # --- applying ----------------------------------------------------------------------

    def apply_message(
        self,
        partition: int,
        offset: int,
        timestamp: float,
        key: bytes | None,
        value: bytes | None,
        campaigns: CampaignSet,
    ) -> list[str]:
        """Apply the inputs of one Kafka message; return the people it touched."""
        try:
            items = decode_input_items(value)
        except InvalidInput as exc:
            self._dead_letters.append(DeadLetter(f"invalid input: {exc}", key, value or b""))
            return []
        touched: list[str] = []
        for index, (item, data) in enumerate(items):
            if self.apply(partition, (offset, index), timestamp, item, data, campaigns):
                touched.append(item.person)
        return touched

    def apply(
        self,
        partition: int,
        position: Position,
        timestamp: float,
        item: Input,
        data: dict[str, Any] | None,
        campaigns: CampaignSet,
    ) -> bool:
        """Apply one input at `position`; False when it was skipped (a replay, or late)."""
        tally = self.tally
        tally.inputs[item.kind] = tally.inputs.get(item.kind, 0) + 1
        entry = self._entry(partition, item.person)
        state = entry.state
        if state is not None and state.last_position is not None and tuple(state.last_position) >= position:
            return False  # a replay after a crash: already applied
        if state is None and self._erased_after(entry, item):
            self.dropped_late += 1
            return False
        now = decision_time(item.at, state.clock if state is not None else None, timestamp)
        applied = _Applied(item, data, now, position, [])
        started = self._clock() if self._clock is not None else 0.0
        try:
            new_state = self._decide(entry.state, applied, campaigns)
        except Exception as exc:
            tally.failed += 1
            self._dead_letters.append(
                DeadLetter(f"decide failed: {exc!r}", item.person.encode(), encode_input(item))
            )
            self._rebuild(item.person, entry, campaigns)
            return False
        if self._clock is not None:
            tally.decide_seconds.append(self._clock() - started)
        tally.applied += 1
        for command in applied.commands:
            tally.commands[command.kind] = tally.commands.get(command.kind, 0) + 1
        entry.state = new_state
        entry.journal.append(applied)
        if isinstance(item, Delete):
            entry.erased_at, entry.marker_dirty = now, True
        self._dirty[item.person] = entry
        self._inputs += 1
        return True

    def _decide(
        self, state: PersonState | None, applied: _Applied, campaigns: CampaignSet
    ) -> PersonState | None:
        new_state, commands = decide(
            state, applied.input, campaigns, applied.now, self.config.engine, applied.data
        )
        if new_state is not None:
            new_state.last_position = applied.position
            new_state.clock = applied.now
        applied.commands = commands
        if isinstance(applied.input, Delete):
            applied.commands.append(self._erasure_activity(applied.input, applied.now))
        return new_state

    def _entry(self, partition: int, person: str) -> _Person:
        entry = self._people.get(person)
        if entry is None:
            raw = self._load(partition, person.encode())
            state = None
            if raw is not None:
                try:
                    state = decode_state(raw)
                except StateDecodeError:
                    raw = None  # unreadable: treated as nobody (and overwritten)
            entry = self._people[person] = _Person(partition, state, raw)
        return entry

    # --- erasure -----------------------------------------------------------------------

    def erasure_key(self, person: str) -> bytes:
        """The store key of a person's erasure marker: a salted hash, never the id itself."""
        digest = hashlib.blake2b(
            person.encode(), key=self.config.erasure_salt[:64], digest_size=20
        ).digest()
        return b"\x00erased\x00" + digest

    def _erased_after(self, entry: _Person, item: Input) -> bool:
        """Whether the person was erased at or after this input happened (Customer.io drops those).

        A later identify creates the person anew.
        """
        if entry.erased_at is not None:
            erased_at: float | None = entry.erased_at
        else:
            raw = self._load(entry.partition, self.erasure_key(item.person))
            erased_at = _MARKER.unpack(raw)[0] if raw and len(raw) == _MARKER.size else None
        if erased_at is None:
            return False
        return not (isinstance(item, Identify) and item.at > erased_at)

    def _erasure_activity(self, item: Delete, now: float) -> Activity:
        marker = self.erasure_key(item.person)[-20:].hex()[:16]
        return Activity(
            person=f"deleted:{marker}", at=now, input_kind="delete",
            summary="person deleted (their data erased; id kept only as a salted hash)",
            changes={}, event_name=None, event_type=None, event_data=None, input=None,
        )

    # --- rebuilding --------------------------------------------------------------------

    def _rebuild(self, person: str, entry: _Person, campaigns: CampaignSet) -> None:
        """The person from their checkpointed bytes and the journal; entries that fail again,
        or that make the record too big, are dead-lettered and left out."""
        state = decode_state(entry.base) if entry.base is not None else None
        kept: list[_Applied] = []
        entry.marker_dirty = False
        for applied in entry.journal:
            before = encode_state(state) if state is not None else None
            try:
                candidate = self._decide(state, applied, campaigns)
            except Exception as exc:
                self._dead_letters.append(
                    DeadLetter(f"decide failed: {exc!r}", person.encode(), encode_input(applied.input))
                )
                state = decode_state(before) if before is not None else None
                continue
            size = len(encode_state(candidate)) if candidate is not None else 0
            if size > self.config.max_state_bytes:
                self._dead_letters.append(self._too_big(person, applied, size))
                state = decode_state(before) if before is not None else None
                continue
            state = candidate
            kept.append(applied)
            if isinstance(applied.input, Delete):
                entry.erased_at, entry.marker_dirty = applied.now, True
        entry.state, entry.journal = state, kept

    def _too_big(self, person: str, applied: _Applied, size: int) -> DeadLetter:
        return DeadLetter(
            f"person record would be {size} bytes, over the {self.config.max_state_bytes}-byte "
            "limit: this input was not applied (reduce the attributes or event properties sent)",
            person.encode(),
            encode_input(applied.input),
        )

    # --- checkpoints -------------------------------------------------------------------

    def checkpoint(self, campaigns: CampaignSet) -> Checkpoint:
        """Everything touched since the last checkpoint, encoded; the journal starts afresh."""
        out = Checkpoint(inputs=self._inputs)
        dirty, self._dirty = self._dirty, {}
        for person, entry in dirty.items():
            raw = encode_state(entry.state) if entry.state is not None else None
            if raw is not None and len(raw) > self.config.max_state_bytes:
                self._rebuild(person, entry, campaigns)
                raw = encode_state(entry.state) if entry.state is not None else None
            out.records.append((entry.partition, person.encode(), raw))
            if entry.marker_dirty and entry.erased_at is not None:
                out.records.append(
                    (entry.partition, self.erasure_key(person), _MARKER.pack(entry.erased_at))
                )
            for applied in entry.journal:
                out.commands.extend((entry.partition, c) for c in applied.commands)
            entry.base, entry.journal, entry.marker_dirty = raw, [], False
        out.dead_letters, self._dead_letters = self._dead_letters, []
        self._inputs = 0
        return out

    def evict(self, keep: int) -> None:
        """Forget decoded people not touched since the last checkpoint, beyond the newest `keep`."""
        excess = len(self._people) - keep
        if excess <= 0:
            return
        # The longest-cached first (a dict keeps the order people were loaded in).
        for person in [p for p in self._people if p not in self._dirty][:excess]:
            del self._people[person]

    def forget_partitions(self, partitions: set[int]) -> None:
        """Drop people of partitions this worker no longer owns (after their last checkpoint)."""
        for person in [p for p, e in self._people.items() if e.partition in partitions]:
            self._people.pop(person, None)
            self._dirty.pop(person, None)
