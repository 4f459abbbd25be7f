"""The person agent: the thin Faust shell around `decide`.

Read a message from the input topic, load each person's state, call the pure core, write
each touched person once, publish the commands, and keep the timer index current. A periodic
task turns due timers into `wake` inputs on the person's own partition.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from typing import Any

import orjson

from agents.person.campaign_source import campaign_source
from agents.person.config import EngineConfig
from agents.person.decision_time import decision_time
from agents.person.engine import decide
from agents.person.timer_index import TimerIndex
from schemas.commands import CallWebhook, Command, EmitInput, SendEmail
from schemas.inputs import Input, Wake
from schemas.person import PersonState
from streams.partitioning import partition_for
from schemas.wire import (
    InvalidInput,
    decode_inputs,
    encode_commands,
    encode_envelope,
    encode_input,
)
from streams.app import Runtime

log = logging.getLogger(__name__)

# A burst of due timers travels as envelopes, not one Kafka message per wake.
WAKES_PER_ENVELOPE = 500

def register(rt: Runtime) -> None:
    """Attach the person agent, its timer scan and the campaign reload to the app."""
    app, settings, people, timers = rt.app, rt.settings, rt.people, rt.timers
    input_topic, sends_topic, projections_topic, dead_letter_topic = (
        rt.input_topic, rt.sends_topic, rt.projections_topic, rt.dead_letter_topic
    )
    timer_index = TimerIndex()
    engine_config = EngineConfig(history_limit=settings.history_limit)

    @app.agent(input_topic)
    async def person_agent(stream: Any) -> None:
        """Apply every input, in order, to its person's state."""
        async for event in stream.events():
            message = event.message
            await apply_message(message.partition, message.offset, event.key, event.value)

    async def apply_message(
        partition: int, offset: int, key: bytes | None, value: bytes | None
    ) -> None:
        """Apply the inputs of one Kafka message; each touched person is written once."""
        try:
            inputs = decode_inputs(value)
        except InvalidInput as exc:
            await dead_letter(key, value, f"invalid input: {exc}")
            return
        wall = time.time()
        campaigns = campaign_source.current
        touched: dict[str, PersonState | None] = {}
        # Each person's timers as stored before this message: the `timers` table mirrors them.
        stored_timers: dict[str, dict[str, float]] = {}
        commands: list[Command] = []
        for index, item in enumerate(inputs):
            position = (offset, index)
            if item.person in touched:
                state = touched[item.person]
            else:
                state = load_state(item.person)
                stored_timers[item.person] = dict(state.timers) if state is not None else {}
            if state is not None and state.last_position is not None and tuple(
                state.last_position
            ) >= position:
                continue  # a replay after a crash: already applied
            now = decision_time(item.at, state.clock if state is not None else None, wall)
            try:
                new_state, new_commands = decide(state, item, campaigns, now, engine_config)
            except Exception as exc:  # noqa: BLE001 - one bad input must never stop the agent
                log.exception("decide failed for %s", item.person)
                await dead_letter(item.person.encode(), encode_input(item), f"decide failed: {exc!r}")
                continue
            if new_state is not None:
                new_state = new_state.model_copy(update={"last_position": position, "clock": now})
            touched[item.person] = new_state
            commands.extend(new_commands)
        for person, state in touched.items():
            store_state(person, state, stored_timers[person])
        await publish(commands, partition)

    def load_state(person: str) -> PersonState | None:
        """The person's state from the table, or None for someone new."""
        raw = people.get(person.encode())
        return PersonState.model_validate_json(raw) if raw else None

    def store_state(
        person: str, state: PersonState | None, stored_timers: dict[str, float]
    ) -> None:
        """Write the person (or erase them); write `timers` only when they changed, and the index."""
        key = person.encode()
        if state is None:
            people.pop(key, None)
            if stored_timers:
                timers.pop(key, None)
            timer_index.set_person(person, {})
            return
        people[key] = state.model_dump_json(exclude_defaults=True).encode()
        if stored_timers != state.timers:
            if state.timers:
                timers[key] = orjson.dumps(state.timers)
            else:
                timers.pop(key, None)
        timer_index.set_person(person, state.timers)

    async def publish(commands: list[Command], partition: int) -> None:
        """Send the commands of one input message, batched: Faust's cost is per Kafka message.

        Read-model commands stay on the input's partition number, so each person's snapshots
        reach PostgreSQL in order.
        """
        sends = [c for c in commands if isinstance(c, (SendEmail, CallWebhook))]
        projections = [
            c for c in commands if not isinstance(c, (SendEmail, CallWebhook, EmitInput))
        ]
        if sends:
            await sends_topic.send(key=sends[0].person.encode(), value=encode_commands(sends))
        if projections:
            await projections_topic.send(
                key=projections[0].person.encode(),
                value=encode_commands(projections),
                partition=partition,
            )
        for command in commands:
            if isinstance(command, EmitInput):
                await input_topic.send(
                    key=command.input.person.encode(), value=encode_input(command.input)
                )

    async def dead_letter(key: bytes | None, value: bytes | None, reason: str) -> None:
        """Park a message Nudge cannot apply, with its reason, on the dead-letter topic."""
        log.warning("dead-lettered input: %s", reason)
        await dead_letter_topic.send(
            key=key,
            value=orjson.dumps(
                {
                    "reason": reason,
                    "source_topic": settings.input_topic,
                    "value": (value or b"").decode("utf-8", "replace"),
                    "at": time.time(),
                }
            ),
        )

    @timers.on_recover
    async def rebuild_timer_index() -> None:
        """After partitions are assigned and restored, index the timers of the people owned."""
        timer_index.rebuild(
            (key.decode(), orjson.loads(value)) for key, value in timers.items() if value
        )
        log.info("timer index rebuilt: %d pending timers", len(timer_index))

    @app.timer(interval=settings.timer_tick_seconds)
    async def fire_due_timers() -> None:
        """Publish a wake input for every timer that has fallen due, one envelope per partition."""
        by_partition: dict[int, list[Input]] = defaultdict(list)
        for person, timer_id, due in timer_index.pop_due(time.time()):
            wake = Wake(person=person, at=due, timer_id=timer_id, due=due)
            by_partition[partition_for(person, settings.partitions)].append(wake)
        for partition, wakes in by_partition.items():
            for start in range(0, len(wakes), WAKES_PER_ENVELOPE):
                chunk = wakes[start : start + WAKES_PER_ENVELOPE]
                await input_topic.send(
                    key=chunk[0].person.encode(), value=encode_envelope(chunk), partition=partition
                )

    @app.timer(interval=2.0)
    async def reload_campaigns() -> None:
        """Pick up edited, added and removed campaign files."""
        await campaign_source.reload(settings.campaigns_dir, settings)
