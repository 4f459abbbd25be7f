"""Deterministic ids and cohorts: the same inputs always give the same message ids and buckets."""

from __future__ import annotations

import hashlib


def digest(*parts: object, size: int = 16) -> str:
    """A short hex hash of `parts` (joined with a separator no id contains)."""
    raw = "\x1f".join(str(p) for p in parts).encode()
    return hashlib.sha256(raw).hexdigest()[:size]


def path_text(path: list[int]) -> str:
    """A step path as text: `[2, 0, 1]` -> `2.0.1`."""
    return ".".join(str(i) for i in path)


def journey_id(person: str, campaign: str, entry: int, first_seen: float, trigger_at: float) -> str:
    """A journey's id, from inputs only: the person's first appearance keeps it unique after the
    person is erased and returns, the trigger's own time tells entries of `always` apart."""
    return digest(person, campaign, entry, repr(first_seen), repr(trigger_at))


def message_id(person: str, campaign: str, journey: str, path: list[int]) -> str:
    """hash(person, campaign, journey, step path): a replayed send gets the same id."""
    return digest("send", person, campaign, journey, path_text(path), size=32)


def call_id(person: str, campaign: str, journey: str, path: list[int]) -> str:
    """The webhook twin of `message_id`."""
    return digest("webhook", person, campaign, journey, path_text(path), size=32)


def broadcast_message_id(broadcast: str, person: str) -> str:
    """hash(broadcast, person): a rescan after a crash re-emits the same id, which the outbox skips."""
    return digest("broadcast", broadcast, person, size=32)


def cohort_point(person: str, campaign: str, path: list[int]) -> float:
    """A point in [0, 100) fixed per person, campaign and random step: the person's cohort."""
    return int(digest("cohort", person, campaign, path_text(path), size=12), 16) / 16**12 * 100
