"""The pure shell step alone: decode → decide → checkpoint encode, one process, no Kafka, no Faust.

    .venv/bin/python -m bench.experiments.engine_only [inputs] [people] [--profile]

Runs the bench workload through `agents.person.shell.PersonCache` (the code the Faust agent
runs) against an in-memory store, checkpointing every 1,000 messages and encoding the commands
as the checkpoint writer does. The CPU per input here is a floor for the person agent: what
Faust and Kafka add is the rest.
"""

from __future__ import annotations

import cProfile
import pickle
import tempfile
from pathlib import Path
import pstats
import sys
import time

from agents.person.campaign_files import load_definitions
from agents.person.campaign_set import CampaignSet
from agents.person.shell import PersonCache
from bench import workload
from bench.harness import CAMPAIGNS
from schemas.wire import encode_command, encode_input
from schemas.commands import EmitInput


def run(count: int, people: int) -> None:
    found = load_definitions(CAMPAIGNS)
    campaigns = CampaignSet.build(found.campaigns, [], found.segments, found.computed)
    messages = _messages(count, people)
    table: dict[tuple[int, bytes], bytes] = {}
    cache = PersonCache(lambda partition, key: table.get((partition, key)))
    commands = records = 0
    started = time.process_time()
    for offset, (_, value, partition) in enumerate(messages):
        cache.apply_message(partition, offset, 1_800_000_100.0, None, value, campaigns)
        if offset % 10 == 9 or offset == len(messages) - 1:
            checkpoint = cache.checkpoint(campaigns)
            for p, key, raw in checkpoint.records:
                if raw is None:
                    table.pop((p, key), None)
                else:
                    table[(p, key)] = raw
            for _, command in checkpoint.commands:
                encode_input(command.input) if isinstance(command, EmitInput) else encode_command(command)
            commands += len(checkpoint.commands)
            records += len(checkpoint.records)
            cache.evict(20_000)
    total = time.process_time() - started
    print(f"{count} inputs, {people} people: {total / count * 1e6:.1f} µs CPU per input, "
          f"{commands / count:.2f} commands and {records / count:.2f} records per input")
    sizes = [len(v) for v in table.values()]
    print(f"  state: {sum(sizes) / len(sizes):.0f} bytes per person, {len(sizes)} people")


def _messages(count: int, people: int) -> list[workload.Message]:
    # Cached, so that repeated runs (and instruction counts) measure the shell step alone.
    path = Path(tempfile.gettempdir()) / f"nudge-engine-only-{count}-{people}.pickle"
    if path.exists():
        return pickle.loads(path.read_bytes())
    messages = list(workload.envelopes(workload.inputs(people, count, 1_800_000_000.0), 100))
    path.write_bytes(pickle.dumps(messages))
    return messages


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    count = int(args[0]) if args else 20_000
    people = int(args[1]) if len(args) > 1 else 20_000
    if "--profile" in sys.argv:
        profile = cProfile.Profile()
        profile.runcall(run, count, people)
        pstats.Stats(profile).sort_stats(sys.argv[-1] if sys.argv[-1] in ("tottime", "cumulative") else "cumulative").print_stats(40)
    else:
        run(count, people)


if __name__ == "__main__":
    main()
