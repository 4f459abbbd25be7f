"""Per-input cost of the shell step for people with long histories (issue 19: it must not grow).

    .venv/bin/python -m bench.experiments.long_history

Each person is reloaded from the store for every input measured (the worst case: a cold
cache), so the cost of decoding and encoding their record shows in full.
"""

from __future__ import annotations

import time
from agents.person.campaign_files import load_definitions
from agents.person.campaign_set import CampaignSet
from agents.person.shell import PersonCache
from bench.harness import CAMPAIGNS
from schemas.inputs import Identify, Track
from streams.worker import tune_garbage_collector
tune_garbage_collector()
found = load_definitions(CAMPAIGNS)
cs = CampaignSet.build(found.campaigns, [], found.segments, found.computed)
T = 1_800_000_000.0
def measure(history: int, people=2000, rounds=5):
    table = {}
    cache = PersonCache(lambda p, k: table.get((p, k)))
    pos = 0
    for i in range(people):
        cache.apply(0, (pos, 0), T, Identify(person=f"p{i}", at=T, attributes={"email": f"p{i}@x.io"}), None, cs); pos += 1
    for h in range(history):
        for i in range(people):
            cache.apply(0, (pos, 0), T, Track(person=f"p{i}", at=T + h, name="viewed_page", data={"url": f"/docs/{h}", "title": "Docs page"}), None, cs); pos += 1
        if h % 10 == 9:
            for p, k, v in cache.checkpoint(cs).records: table[(p, k)] = v
    for p, k, v in cache.checkpoint(cs).records: table[(p, k)] = v
    cache.evict(0)
    t = time.process_time(); n = 0
    for r in range(rounds):
        for i in range(people):
            cache.apply(0, (pos, 0), T, Track(person=f"p{i}", at=T + 1000 + r, name="app_login"), None, cs); pos += 1; n += 1
        for p, k, v in cache.checkpoint(cs).records: table[(p, k)] = v
        cache.evict(0)   # every round reloads each person from the store: the worst case
    size = sum(len(v) for v in table.values()) / len(table)
    print(f"history {history:4d} events: {(time.process_time()-t)/n*1e6:6.1f} us per input (decode+decide+encode), record {size:,.0f} bytes")


def main() -> None:
    for h in (0, 20, 100, 300):
        measure(h)


if __name__ == "__main__":
    main()
