"""The person agent: the Faust shell around the pure shell step and `decide`.

Faust owns the consumer group, partition assignment, the people table's changelog and its
recovery. The agent reads the input topic without acknowledging events as it goes
(`stream.noack()`): each message is applied to the people cache (agents/person/shell.py), and a
checkpoint (every `checkpoint_every` messages, every `checkpoint_seconds`, and when partitions
are revoked or the worker stops) makes the effects durable before the state that records them
(agents/person/checkpoint.py). Only then are the events acknowledged, so Faust commits their
offsets. Only the next message expected on each partition is applied, so the offsets committed
never pass an input nobody applied (agents/person/input_order.py). A periodic task turns due
timers into `wake` inputs on the person's own partition.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections import defaultdict
from typing import Any

import msgspec
from faust.types import TP

from agents.person.campaign_source import campaign_source
from agents.person.checkpoint import CheckpointFailed, CheckpointWriter
from agents.person.config import EngineConfig
from agents.person.input_order import InputOrder, Order
from agents.person.shell import PersonCache, ShellConfig, Tally
from agents.person.timer_index import TimerIndex
from schemas.inputs import NEXT_TIMER, Input, Wake
from schemas.wire import encode_envelope
from streams import metrics
from streams.app import Runtime
from streams.kafka_offsets import first_record_at, start_offsets
from streams.partitioning import partition_for
from streams.person_store import PersonStore

log = logging.getLogger(__name__)

# A burst of due timers travels as envelopes, not one Kafka message per wake.
WAKES_PER_ENVELOPE = 500
# People kept decoded across checkpoints (the busiest stay warm).
CACHE_PEOPLE = 20_000
# How often the pause watchdog ticks; a fenced worker's process exits this long after.
WATCHDOG_SECONDS = 0.25
FENCED_EXIT_SECONDS = 10.0
# A partition whose messages arrive ahead of the expected one is rewound at most this often
# (the tail of a batch fetched before the rewind may still be arriving).
REWIND_SECONDS = 1.0
EXIT_FENCED = 75  # EX_TEMPFAIL: restart me


class _Timers(msgspec.Struct):
    """The one field the timer index needs from a stored person (the rest is skipped)."""

    timers: dict[str, float] = {}


_timers_decoder = msgspec.msgpack.Decoder(_Timers)


class PersonAgent:
    """The agent's state between messages: the people cache, unacknowledged events, timers."""

    def __init__(self, rt: Runtime) -> None:
        settings = rt.settings
        self.rt = rt
        self.store = PersonStore(rt.people)
        self.cache = PersonCache(
            self.store.get,
            ShellConfig(
                engine=EngineConfig(history_limit=settings.history_limit),
                erasure_salt=settings.secret_key.encode(),
            ),
            clock=time.perf_counter,
        )
        self.writer = CheckpointWriter(
            settings.kafka_bootstrap,
            self.store,
            partitions=settings.partitions,
            input_topic=settings.input_topic,
            sends_topic=settings.sends_topic,
            projections_topic=settings.projections_topic,
            dead_letter_topic=settings.dead_letter_topic,
        )
        self.timer_index = TimerIndex()
        self.order = InputOrder()
        self._rewound: dict[int, float] = {}
        self.checkpoint_every = settings.checkpoint_every
        self.checkpoint_seconds = settings.checkpoint_seconds
        self._events: list[Any] = []
        self._lock = asyncio.Lock()
        self._last_checkpoint = time.monotonic()
        # A worker frozen (SIGSTOP, a stalled VM) for longer than this may have been replaced
        # by the group: whatever it applied before must not be written any more.
        self._pause_limit = rt.app.conf.broker_session_timeout * 0.8
        # None until the worker runs: starting up (topics, recovery) is not a freeze.
        self._last_tick: float | None = None
        self.fenced = False

    async def admit(self, event: Any) -> bool:
        """True when `event` is the next message expected on its partition (then apply it)."""
        message = event.message
        verdict = self.order.admit(message.partition, message.offset)
        if verdict is Order.UNKNOWN:
            await self._learn_starts()
            verdict = self.order.admit(message.partition, message.offset)
        if verdict is Order.APPLY:
            return True
        if verdict is Order.AHEAD:
            await self._rewind(message.partition, message.offset)
            # Kafka had no records in between: this one is the next after all.
            if self.order.admit(message.partition, message.offset) is Order.APPLY:
                return True
        elif verdict is Order.UNKNOWN:
            log.info("skipped offset %d of input partition %d: not assigned here",
                     message.offset, message.partition)
        return False

    def _owned_inputs(self) -> list[int]:
        topic = self.rt.settings.input_topic
        return sorted(tp.partition for tp in self.rt.app.consumer.assignment() if tp.topic == topic)

    async def _learn_starts(self) -> None:
        """Expect, on each owned input partition not known yet, the group's committed offset."""
        unknown = [p for p in self._owned_inputs() if self.order.expected(p) is None]
        if not unknown:
            return
        starts = await start_offsets(
            self.rt.settings.kafka_bootstrap, self.rt.app.conf.id, self.rt.settings.input_topic, unknown
        )
        for partition, offset in starts.items():
            self.order.start(partition, offset)
        # The lookup blocked the loop, not the consumer's heartbeats: not a freeze.
        self._last_tick = time.monotonic()

    async def _rewind(self, partition: int, offset: int) -> None:
        """Messages before `offset` did not arrive: read the partition again from the one expected.

        Unless Kafka holds no record there (a transactional producer's markers): then the
        first record after them is the one expected.
        """
        now = time.monotonic()
        if now - self._rewound.get(partition, -REWIND_SECONDS) < REWIND_SECONDS:
            return
        self._rewound[partition] = now
        expected = self.order.expected(partition)
        assert expected is not None
        settings = self.rt.settings
        first = await first_record_at(settings.kafka_bootstrap, settings.input_topic, partition, expected)
        self._last_tick = time.monotonic()
        if first is not None and first > expected:
            log.info("input partition %d holds no records from %d to %d: expecting %d",
                     partition, expected, first - 1, first)
            self.order.start(partition, first)
            if first >= offset:
                return
            expected = first
        log.warning(
            "input partition %d delivered offset %d while %d was expected: rewinding to it",
            partition, offset, expected,
        )
        try:
            await self.rt.app.consumer.seek(TP(settings.input_topic, partition), expected)
        except Exception:
            log.exception("could not rewind input partition %d", partition)

    def apply(self, event: Any) -> None:
        """Apply one Kafka message to the cache; its event waits for the next checkpoint."""
        message = event.message
        touched = self.cache.apply_message(
            message.partition, message.offset, message.timestamp, event.key, event.value,
            campaign_source.current,
        )
        for person in touched:
            state = self.cache.state(person)
            self.timer_index.set_person(
                person, state.timers if state is not None else {}, message.partition
            )
        self._events.append(event)

    def checkpoint_due(self) -> bool:
        """Enough messages, or enough time, since the last checkpoint."""
        return len(self._events) >= self.checkpoint_every or (
            bool(self._events) and time.monotonic() - self._last_checkpoint >= self.checkpoint_seconds
        )

    def tick(self) -> bool:
        """The watchdog: True (and fenced from then on) when the worker was frozen too long."""
        now = time.monotonic()
        paused = self._last_tick is not None and now - self._last_tick > self._pause_limit
        self._last_tick = now
        if paused and not self.fenced:
            self.fenced = True
            log.error(
                "this worker was frozen for over %.0f s: the group may have given its partitions "
                "to another worker, so nothing it applied before is written; stopping (the inputs "
                "are applied again by their owner)", self._pause_limit,
            )
        return self.fenced

    async def checkpoint(self) -> None:
        """Make everything applied so far durable, in commit order, then acknowledge its events.

        A fenced worker (frozen past its session, a zombie) writes nothing: another worker
        may already own its partitions, and a late changelog record would overwrite theirs.
        """
        async with self._lock:
            if self.tick():
                return
            self._last_checkpoint = time.monotonic()
            events, self._events = self._events, []
            checkpoint = self.cache.checkpoint(campaign_source.current)
            if not events and not checkpoint.records and not checkpoint.dead_letters:
                return
            for letter in checkpoint.dead_letters:
                log.warning("dead-lettered an input: %s", letter.reason)
            try:
                await self.writer.write(checkpoint, fenced=lambda: self.tick())
            except CheckpointFailed as exc:
                # Nothing was written locally and nothing acknowledged: after a restart the
                # inputs are applied again from the last committed offsets.
                log.error("%s; stopping the worker", exc)
                await self.rt.app.crash(exc)
                return
            for event in events:
                event.ack()
            self.cache.evict(CACHE_PEOPLE)
            _count(self.cache.tally.drain(), len(checkpoint.dead_letters), len(self.timer_index))

    async def on_revoked(self, revoked: set[Any]) -> None:
        """Before partitions move away: checkpoint, then forget their people."""
        await self.checkpoint()
        partitions = {tp.partition for tp in revoked if tp.topic == self.rt.settings.input_topic}
        self.cache.forget_partitions(partitions)
        self.order.forget(partitions)

    def rebuild_timers(self) -> int:
        """Index the timers of the people this worker now owns; return how many people have any."""
        changelog = self.store.changelog_topic
        owned = sorted(
            tp.partition for tp in self.rt.app.assignor.assigned_actives() if tp.topic == changelog
        )
        self.timer_index.rebuild()
        found = 0
        for partition in owned:
            people = []
            for key, value in self.store.items(partition):
                try:
                    timers = _timers_decoder.decode(value).timers
                except msgspec.DecodeError:
                    continue
                if timers:
                    people.append((key.decode(), timers))
            self.timer_index.add(people, partition)
            found += len(people)
        # A long rebuild blocks the loop, not the consumer's heartbeats: not a freeze.
        self._last_tick = time.monotonic()
        return found

    async def fire_due_timers(self) -> None:
        """Publish a wake input for every timer that has fallen due, one envelope per partition."""
        by_partition: dict[int, list[Input]] = defaultdict(list)
        partitions = self.rt.settings.partitions
        index = self.timer_index
        for person, due, partition in index.pop_due(time.time()):
            # Fires every timer of the person due by `due` (decide catches up in order).
            wake = Wake(person=person, at=due, timer_id=NEXT_TIMER, due=due)
            by_partition[partition if partition >= 0 else partition_for(person, partitions)].append(wake)
        for partition, wakes in by_partition.items():
            for start in range(0, len(wakes), WAKES_PER_ENVELOPE):
                chunk = wakes[start : start + WAKES_PER_ENVELOPE]
                try:
                    sent = await self.rt.input_topic.send(
                        key=chunk[0].person.encode(), value=encode_envelope(chunk), partition=partition
                    )
                    await sent
                except Exception:
                    log.exception("could not publish %d wakes; they are retried", len(chunk))
                    for wake in chunk:
                        index.retry(wake.person, wake.due, partition)
                    continue
                metrics.TIMERS_FIRED.inc(len(chunk))


def _count(tally: Tally, dead_letters: int, timers_pending: int) -> None:
    """A checkpoint's figures into the worker's metrics (once per checkpoint, not per input)."""
    for kind, n in tally.inputs.items():
        metrics.INPUTS.labels(kind=kind).inc(n)
    metrics.DECISIONS.labels(outcome="applied").inc(tally.applied)
    if tally.failed:
        metrics.DECISIONS.labels(outcome="failed").inc(tally.failed)
    for kind, n in tally.commands.items():
        metrics.COMMANDS.labels(kind=kind).inc(n)
    for seconds in tally.decide_seconds:
        metrics.DECIDE_SECONDS.observe(seconds)
    if dead_letters:
        metrics.DEAD_LETTERS.labels(stage="person").inc(dead_letters)
    metrics.TIMERS_PENDING.set(timers_pending)


def register(rt: Runtime) -> PersonAgent:
    """Attach the person agent, its checkpoints, its timer scan and the campaign reload."""
    app, settings = rt.app, rt.settings
    agent = PersonAgent(rt)

    @app.agent(rt.input_topic)
    async def person_agent(stream: Any) -> None:
        """Apply every input, in order, to its person's state; checkpoint as configured."""
        async for event in stream.noack().events():
            if await agent.admit(event):
                agent.apply(event)
            if agent.checkpoint_due():
                await agent.checkpoint()

    @app.timer(interval=settings.checkpoint_seconds)
    async def checkpoint_when_idle() -> None:
        """A quiet stream still gets its last inputs checkpointed within `checkpoint_seconds`."""
        if agent.checkpoint_due():
            await agent.checkpoint()

    @app.on_partitions_revoked.connect
    async def checkpoint_before_revoke(sender: Any, revoked: set[Any], **_: Any) -> None:
        await agent.on_revoked(revoked)

    @app.timer(interval=WATCHDOG_SECONDS)
    async def watchdog() -> None:
        """Notice a freeze past the session timeout at once, and stop before writing anything."""
        if agent.tick():
            # Faust's crash path can leave the process alive with its loop closed; a supervisor
            # only restarts a process that exits, so make sure this one does.
            threading.Timer(FENCED_EXIT_SECONDS, os._exit, (EXIT_FENCED,)).start()
            await app.crash(RuntimeError("worker frozen past its session timeout; restart it"))

    @app.on_before_shutdown.connect
    async def checkpoint_at_shutdown(sender: Any, **_: Any) -> None:
        # Best effort: what is not checkpointed here is applied again by the next owner.
        try:
            await agent.checkpoint()
        except Exception:
            log.exception("checkpoint at shutdown failed; the inputs will be applied again")
        await agent.writer.stop()

    @rt.people.on_recover
    async def rebuild_timer_index() -> None:
        """After partitions are assigned and restored, index the timers of the people owned."""
        log.info("timer index rebuilt: %d people with pending timers", agent.rebuild_timers())

    @app.timer(interval=settings.timer_tick_seconds)
    async def fire_due_timers() -> None:
        await agent.fire_due_timers()

    @app.timer(interval=2.0)
    async def reload_campaigns() -> None:
        """Pick up edited, added and removed campaign files."""
        await campaign_source.reload(settings.campaigns_dir, settings)

    return agent
