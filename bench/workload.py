"""A deterministic, realistic input stream for the campaigns in `bench/campaigns`, and its wire form.

People are identified once (email, name, plan, a trial for a third of them), then act: product
views, page views, logins, carts, purchases, signups, feature activations. About 4% of inputs
trigger an immediate send (signed_up → welcome, feature_activated → reporting_tip); carts and
product views start journeys that wait (timers).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import orjson

from streams.partitioning import partition_for

PARTITIONS = 4
DAY = 86400.0

# (weight, kind, name, data) of a person's next action; weights are per mille.
ACTIONS: list[tuple[int, str, str, dict[str, Any]]] = [
    (280, "track", "viewed_product", {"product_id": "p{n}", "category": "shoes", "price": 59}),
    (220, "page", "/pricing", {"url": "https://example.com/pricing", "title": "Pricing"}),
    (140, "track", "app_login", {}),
    (100, "identify", "", {"last_login_at": "{now}", "plan_type": "trial"}),
    (50, "track", "added_to_cart", {"product_id": "p{n}", "product_name": "Trail Runner", "category": "shoes"}),
    (30, "track", "completed_purchase", {"category": "shoes", "amount": 120}),
    (30, "track", "signed_up", {"plan": "trial"}),
    (30, "track", "created_project", {"name": "Q{n} plan"}),
    (20, "track", "feature_activated", {"feature_name": "reporting_dashboard"}),
    (20, "track", "feature_activated", {"feature_name": "billing"}),
    (40, "track", "onboarding_step_completed", {"step": "invite_teammate"}),
    (40, "page", "/docs", {"url": "https://example.com/docs", "title": "Docs"}),
]


def person_id(index: int, prefix: str = "u") -> str:
    """The id of person `index` (stable across runs)."""
    return f"{prefix}{index:07d}"


def identify(person: str, at: float, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """A first identify with the attributes the campaigns read."""
    n = int(person[-7:]) if person[-7:].isdigit() else 0
    attributes: dict[str, Any] = {
        "email": f"{person}@bench.example",
        "first_name": f"Name{n % 997}",
        "plan_type": "trial" if n % 3 == 0 else "paid",
        "created_at": at - (n % 400) * DAY,
    }
    if n % 3 == 0:  # a 14-day trial started up to 10 days ago: its milestones are timers
        start = at - (n % 10) * DAY
        attributes.update(trial_started_at=start, trial_ends_at=start + 14 * DAY)
    attributes.update(extra or {})
    return {"kind": "identify", "person": person, "at": at, "attributes": attributes}


def action(person: str, at: float, rng: random.Random) -> dict[str, Any]:
    """One weighted-random action of `person`."""
    pick = rng.randrange(1000)
    for weight, kind, name, data in ACTIONS:
        if pick < weight:
            break
        pick -= weight
    n = rng.randrange(50)
    filled = {
        key: (at if value == "{now}" else value.format(n=n) if isinstance(value, str) else value)
        for key, value in data.items()
    }
    if kind == "identify":
        return {"kind": "identify", "person": person, "at": at, "attributes": filled}
    return {
        "kind": "track",
        "person": person,
        "at": at,
        "name": "viewed_page" if kind == "page" else name,
        "type": "page" if kind == "page" else "event",
        "data": filled,
    }


def inputs(people: int, events: int, start: float, seed: int = 7, prefix: str = "u") -> Iterator[dict[str, Any]]:
    """`events` inputs over `people` people; a person's first input is their identify."""
    rng = random.Random(seed)
    seen: set[int] = set()
    for i in range(events):
        index = rng.randrange(people)
        person = person_id(index, prefix)
        at = start + i * 0.001
        if index not in seen:
            seen.add(index)
            yield identify(person, at)
        else:
            yield action(person, at, rng)


def population(people: int, start: float, prefix: str = "u", extra: dict[str, Any] | None = None,
               tracks_each: int = 1, seed: int = 11) -> Iterator[dict[str, Any]]:
    """Every one of `people` identified, then `tracks_each` actions each (for state and timers)."""
    rng = random.Random(seed)
    for index in range(people):
        yield identify(person_id(index, prefix), start, extra)
    for _ in range(tracks_each):
        for index in range(people):
            yield action(person_id(index, prefix), start + 1.0, rng)


Message = tuple[bytes, bytes, int]  # key, value, partition


def envelopes(items: Iterator[dict[str, Any]], size: int, partitions: int = PARTITIONS) -> list[Message]:
    """Group inputs by partition into envelopes of up to `size`, in order; size 1 sends them bare."""
    buffers: dict[int, list[bytes]] = {}
    keys: dict[int, bytes] = {}
    out: list[Message] = []

    def flush(partition: int) -> None:
        parts = buffers.pop(partition)
        value = parts[0] if size == 1 else b'{"inputs":[' + b",".join(parts) + b"]}"
        out.append((keys[partition], value, partition))

    for item in items:
        partition = partition_for(item["person"], partitions)
        buffers.setdefault(partition, []).append(orjson.dumps(item))
        keys.setdefault(partition, item["person"].encode())
        if len(buffers[partition]) >= size:
            flush(partition)
            del keys[partition]
    for partition in list(buffers):
        flush(partition)
    return out


def warmup(partitions: int = PARTITIONS, at: float = 0.0) -> list[Message]:
    """One identify per partition: its commit proves the worker owns and consumes every partition."""
    out: list[Message] = []
    index = 0
    while len(out) < partitions:
        person = f"warm{index}"
        index += 1
        partition = partition_for(person, partitions)
        if all(p != partition for _, _, p in out):
            out.append((person.encode(), orjson.dumps(identify(person, at)), partition))
    return out
