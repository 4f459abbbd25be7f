"""EXPERIMENT (bench only): `person_agent_batched`, a projector that unpacks it, and raw-table changelogs.

    .venv/bin/python -m bench.run --only processing --worker-module bench.experiments.worker_batched
"""

from __future__ import annotations

import sys
from typing import Any

import orjson

import bench.experiments.worker_raw_tables  # noqa: F401 - the changelog fix comes first
import bench.experiments.person_agent_batched as batched

sys.modules["agents.person.agent"] = batched  # before the worker command imports the original

import agents.projector.agent as projector  # noqa: E402
from agents.projector.store import write_batch  # noqa: E402
from agents.sender import outbox  # noqa: E402
from schemas.commands import Activity, JourneyEvent, PersonSnapshot  # noqa: E402
from schemas.wire import _COMMAND, decode_command  # noqa: E402
from streams.app import settings  # noqa: E402
from streams.database import get_pool  # noqa: E402


def unpack(raw: bytes) -> list[Any]:
    """One projections message: a single command, or a `{"commands": [...]}` group."""
    if raw.startswith(b'{"commands":'):
        return [_COMMAND.validate_python(c) for c in orjson.loads(raw)["commands"]]
    return [decode_command(raw)]


async def projector_agent(stream: Any) -> None:
    """The projector's loop, unpacking groups."""
    async for batch in stream.take(1000, within=0.05):
        commands = [c for raw in batch for c in unpack(raw)]
        pool = await get_pool(settings)
        events = [c for c in commands if isinstance(c, JourneyEvent)]
        if events:
            await outbox.record_journey_events(pool, events)
        read_models = [c for c in commands if isinstance(c, (Activity, PersonSnapshot))]
        if read_models:
            await write_batch(pool, read_models)


projector.projector_agent.fun = projector_agent

if __name__ == "__main__":
    from streams.cli.run import worker

    worker.main(args=[], standalone_mode=True)
