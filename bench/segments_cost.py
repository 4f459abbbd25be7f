"""What segments cost the decision core: inputs/s through `decide` with 0 vs 20 segments defined.

Pure core only (no Kafka, no RocksDB): a realistic mix of identifies, tracks, pages and
delivery outcomes over 2,000 people, each decision carrying the state forward as the agent does.

    .venv/bin/python bench/segments_cost.py [--inputs 60000]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agents.person.campaign_set import CampaignSet  # noqa: E402
from agents.person.engine import decide  # noqa: E402
from schemas.campaigns import Campaign, SegmentDefinition  # noqa: E402
from schemas.inputs import Delivery, Identify, Input, Track  # noqa: E402

T0 = 1_772_442_000.0
CAMPAIGNS = [
    Campaign.model_validate({"id": "welcome", "trigger": {"event": "signed_up"}, "steps": [{"send": "welcome"}, {"wait": "2d"}, {"send": "tips"}]}),
    Campaign.model_validate({"id": "thanks", "trigger": {"event": "purchase"}, "reentry": "always", "steps": [{"send": "thanks"}]}),
]

# Twenty segments of the kinds people write: attributes, event counts, windows, inactivity, combos.
SEGMENTS = [
    {"id": "pro", "when": {"attribute": "plan", "eq": "pro"}},
    {"id": "trial", "when": {"attribute": "plan", "eq": "trial"}},
    {"id": "has_email", "when": {"attribute": "email", "exists": True}},
    {"id": "eu", "when": {"attribute": "country", "in": ["DE", "FR", "ES", "IT"]}},
    {"id": "big_company", "when": {"attribute": "employees", "gte": 100}},
    {"id": "buyers", "when": {"event": "purchase"}},
    {"id": "repeat_buyers", "when": {"event": "purchase", "count": {"gte": 3}}},
    {"id": "recent_buyers", "when": {"event": "purchase", "within": "7d"}},
    {"id": "big_orders", "when": {"event": "purchase", "where": {"amount": {"gte": 100}}}},
    {"id": "viewers", "when": {"event": "viewed_product", "count": {"gte": 5}, "within": "30d"}},
    {"id": "quiet", "when": {"not_performed": "app_login", "for": "7d"}},
    {"id": "active", "when": {"event": "app_login", "within": "1d"}},
    {"id": "pricing_page", "when": {"event": "/pricing"}},
    {"id": "openers", "when": {"message": "welcome", "opened": True}},
    {"id": "pro_buyers", "when": {"all": [{"segment": "pro"}, {"segment": "buyers"}]}},
    {"id": "trial_quiet", "when": {"all": [{"attribute": "plan", "eq": "trial"}, {"not_performed": "app_login", "for": "3d"}]}},
    {"id": "eu_or_big", "when": {"any": [{"segment": "eu"}, {"segment": "big_company"}]}},
    {"id": "not_pro", "when": {"not": {"attribute": "plan", "eq": "pro"}}},
    {"id": "signed_up_recently", "when": {"event": "signed_up", "within": "14d"}},
    {"id": "cart_no_buy", "when": {"all": [{"event": "added_to_cart", "within": "1d"}, {"not": {"event": "purchase", "within": "1d"}}]}},
]


def workload(count: int, people: int = 2000, seed: int = 7) -> list[Input]:
    """Identify 10%, track 60%, page 20%, delivery 10%; one input a second per the whole site."""
    rng = random.Random(seed)
    inputs: list[Input] = []
    for i in range(count):
        person, at = f"p{rng.randrange(people)}", T0 + i
        roll = rng.random()
        if roll < 0.1:
            inputs.append(Identify(person=person, at=at, attributes={
                "email": f"{person}@example.com", "plan": rng.choice(["trial", "pro", "free"]),
                "country": rng.choice(["DE", "US", "FR", "BR"]), "employees": rng.randrange(500),
            }))
        elif roll < 0.7:
            name = rng.choice(["app_login", "viewed_product", "added_to_cart", "purchase", "signed_up"])
            inputs.append(Track(person=person, at=at, name=name, data={"amount": rng.randrange(200), "sku": f"s{rng.randrange(50)}"}))
        elif roll < 0.9:
            inputs.append(Track(person=person, at=at, name=rng.choice(["/pricing", "/docs", "/"]), type="page"))
        else:
            inputs.append(Delivery(person=person, at=at, message_id="m", status="opened"))
    return inputs


def run(campaigns: CampaignSet, inputs: list[Input]) -> float:
    """Inputs per second through `decide`, state carried per person."""
    states: dict = {}
    began = time.perf_counter()
    for item in inputs:
        states[item.person], _ = decide(states.get(item.person), item, campaigns, item.at)
    return len(inputs) / (time.perf_counter() - began)


def main() -> None:
    """Print inputs/s with 0 and with 20 segments."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--inputs", type=int, default=60_000)
    args = parser.parse_args()
    inputs = workload(args.inputs)
    none = CampaignSet.build(CAMPAIGNS)
    twenty = CampaignSet.build(CAMPAIGNS, segments=[SegmentDefinition.model_validate(s) for s in SEGMENTS])
    run(none, inputs[:3000])  # warm up
    zero_rate = run(none, inputs)
    twenty_rate = run(twenty, inputs)
    print(f"{args.inputs} inputs, 2000 people, 2 campaigns")
    print(f"  0 segments: {zero_rate:>9,.0f} inputs/s")
    print(f" 20 segments: {twenty_rate:>9,.0f} inputs/s  ({twenty_rate / zero_rate:.0%} of the rate without)")


if __name__ == "__main__":
    main()
