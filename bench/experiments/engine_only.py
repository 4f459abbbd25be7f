"""The pure core alone: decode → decide → encode state, one process, no Kafka, no Faust.

    .venv/bin/python -m bench.experiments.engine_only [inputs] [people]

The CPU per input here is a floor for the person agent: what Faust and I/O add is the rest.
"""

from __future__ import annotations

import sys
import time

from agents.person.campaign_files import load_definitions
from agents.person.campaign_set import CampaignSet
from agents.person.config import EngineConfig
from agents.person.engine import decide
from bench import workload
from bench.harness import CAMPAIGNS
from schemas.person import PersonState
from schemas.wire import decode_inputs, encode_command


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    people = int(sys.argv[2]) if len(sys.argv) > 2 else 20_000
    found = load_definitions(CAMPAIGNS)
    campaigns = CampaignSet.build(found.campaigns, [], found.segments, found.computed)
    config = EngineConfig(history_limit=100)
    messages = workload.envelopes(workload.inputs(people, count, time.time()), 100)
    table: dict[str, bytes] = {}
    timings = {"decode": 0.0, "load": 0.0, "decide": 0.0, "store": 0.0, "commands": 0.0}
    commands = 0
    started = time.process_time()
    for _, value, _ in messages:
        t0 = time.process_time()
        inputs = decode_inputs(value)
        timings["decode"] += time.process_time() - t0
        now = time.time()
        for item in inputs:
            t0 = time.process_time()
            raw = table.get(item.person)
            state = PersonState.model_validate_json(raw) if raw else None
            t1 = time.process_time()
            new_state, new_commands = decide(state, item, campaigns, now, config)
            t2 = time.process_time()
            if new_state is not None:
                table[item.person] = new_state.model_dump_json(exclude_defaults=True).encode()
            t3 = time.process_time()
            for command in new_commands:
                encode_command(command)
            commands += len(new_commands)
            timings["load"] += t1 - t0
            timings["decide"] += t2 - t1
            timings["store"] += t3 - t2
            timings["commands"] += time.process_time() - t3
    total = time.process_time() - started
    print(f"{count} inputs, {people} people: {total / count * 1e6:.0f} µs CPU per input, "
          f"{commands / count:.2f} commands per input")
    for name, seconds in timings.items():
        print(f"  {name:9s} {seconds / count * 1e6:7.0f} µs/input")
    sizes = [len(v) for v in table.values()]
    print(f"  state: {sum(sizes) / len(sizes):.0f} bytes per person (JSON), {len(sizes)} people")


if __name__ == "__main__":
    main()
