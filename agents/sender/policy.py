"""Send-time checks for a claimed batch, a few queries per batch instead of several per message.

Suppression (the address list, normalised, and the person's own flag), marketing opt-outs
(the person unsubscribed, or from the template's topic), the per-person frequency limit and
each broadcast's rate limit. Rows that must not go now get an outcome (failed with the
reason, or deferred); the rest are sent.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import asyncpg

from agents.sender import outcomes
from agents.sender.limits import FrequencyLimits, next_allowed_at
from agents.sender.outbox import broadcast_of, recent_marketing
from agents.sender.outcomes import Outcome
from agents.sender.suppression import normalize_address
from schemas.outbox import OutboxRow
from schemas.templates import EmailTemplate
from streams.rate_limit import schedule

# One round trip: every fact about the batch's addresses and people that can stop a send.
_FACTS = """
SELECT 'suppressed_address' AS kind, address AS key, '' AS topic, reason AS detail
FROM suppressions WHERE address = ANY($1::text[])
UNION ALL
SELECT CASE WHEN suppressed THEN 'suppressed_person' ELSE 'unsubscribed_person' END,
       person, '', ''
FROM people WHERE person = ANY($2::text[]) AND (suppressed OR unsubscribed)
UNION ALL
SELECT 'topic', p.person, p.topic, ''
FROM subscription_preferences p
JOIN unnest($3::text[], $4::text[]) AS u(person, topic) ON p.person = u.person AND p.topic = u.topic
WHERE NOT p.subscribed
"""

# A reserved broadcast slot is honoured when the row is claimed up to this late (a later claim
# takes a new slot): any w seconds then hold at most rate * (w + 0.1 + 0.25) + 1 sends.
_SLOT_GRACE_SECONDS = 0.25
# ... and a row claimed this early for its slot (clocks of two workers) is sent too.
_SLOT_EARLY_SECONDS = 0.05


@dataclass(frozen=True)
class Pending:
    """A claimed row with the template it will be rendered from."""

    row: OutboxRow
    template: EmailTemplate

    @property
    def topic(self) -> str | None:
        topic = self.template.topic or self.row.command.context.campaign.get("topic")
        return topic if isinstance(topic, str) and topic else None


@dataclass
class Verdict:
    """What the checks decided: outcomes for rows that stop here, and the rows to send."""

    stopped: list[tuple[Pending, Outcome]] = field(default_factory=list)
    send: list[Pending] = field(default_factory=list)


@dataclass
class BroadcastRates:
    """Each broadcast's total rate (None: unlimited), read once per broadcast: it never changes."""

    known: dict[str, float | None] = field(default_factory=dict)

    async def rates(self, pool: asyncpg.Pool, broadcasts: set[str]) -> dict[str, float]:
        """The limited broadcasts among `broadcasts`, with their rate."""
        unknown = sorted(broadcasts - set(self.known))
        if unknown:
            records = await pool.fetch("SELECT id, rate FROM broadcasts WHERE id = ANY($1)", unknown)
            found = {r["id"]: r["rate"] for r in records}
            for broadcast in unknown:
                self.known[broadcast] = found.get(broadcast)
        return {b: rate for b in broadcasts if (rate := self.known.get(b))}


async def check_batch(
    pool: asyncpg.Pool,
    pending: list[Pending],
    limits: FrequencyLimits,
    rates: BroadcastRates,
    now: float,
) -> Verdict:
    """Run every send-time check over a claimed batch."""
    verdict = Verdict()
    remaining = await _facts(pool, pending, verdict)
    remaining = await _frequency(pool, remaining, limits, now, verdict)
    verdict.send = await _broadcast_rates(pool, remaining, rates, now, verdict)
    return verdict


async def _facts(pool: asyncpg.Pool, pending: list[Pending], verdict: Verdict) -> list[Pending]:
    marketing = [p for p in pending if not p.row.command.transactional]
    topics = [(p.row.person, p.topic) for p in marketing if p.topic]
    records = await pool.fetch(
        _FACTS,
        sorted({normalize_address(p.row.to_address or "") for p in pending}),
        sorted({p.row.person for p in pending}),
        [person for person, _ in topics],
        [topic for _, topic in topics],
    )
    suppressed = {r["key"]: r["detail"] for r in records if r["kind"] == "suppressed_address"}
    people = {r["key"]: r["kind"] for r in records if r["kind"].endswith("_person")}
    opted_out = {(r["key"], r["topic"]) for r in records if r["kind"] == "topic"}
    remaining: list[Pending] = []
    for p in pending:
        row = p.row
        address = normalize_address(row.to_address or "")
        transactional = row.command.transactional
        if address in suppressed:
            reason = f"suppressed: {address} is on the suppression list ({suppressed[address]})"
            verdict.stopped.append((p, outcomes.failed(row.message_id, reason, "suppressed")))
        elif people.get(row.person) == "suppressed_person":
            reason = f"suppressed: person {row.person} is suppressed"
            verdict.stopped.append((p, outcomes.failed(row.message_id, reason, "suppressed")))
        elif not transactional and people.get(row.person) == "unsubscribed_person":
            reason = "unsubscribed from marketing email"
            verdict.stopped.append((p, outcomes.failed(row.message_id, reason, "unsubscribed")))
        elif not transactional and p.topic and (row.person, p.topic) in opted_out:
            reason = f"unsubscribed from topic {p.topic!r}"
            verdict.stopped.append((p, outcomes.failed(row.message_id, reason, "unsubscribed")))
        else:
            remaining.append(p)
    return remaining


async def _frequency(
    pool: asyncpg.Pool, pending: list[Pending], limits: FrequencyLimits, now: float, verdict: Verdict
) -> list[Pending]:
    marketing = [p for p in pending if not p.row.command.transactional]
    if not limits.active or not marketing:
        return pending
    recent = await recent_marketing(
        pool, sorted({p.row.person for p in marketing}), now - limits.longest_window
    )
    by_person = defaultdict(list)
    for send in recent:
        by_person[send.person].append(send)
    held_back: set[str] = set()
    why = f"over the marketing limit ({limits.per_day or '-'}/day, {limits.per_week or '-'}/week)"
    # In claim order, so of two loops racing for one person's last slot only the first sends.
    for p in sorted(marketing, key=lambda p: (p.row.claimed_at or now, p.row.message_id)):
        row = p.row
        mine = (row.claimed_at or now, row.message_id)
        counted = [
            s.at for s in by_person[row.person]
            if s.message_id != row.message_id and s.message_id not in held_back
            and (s.status == "sent" or (s.claimed_at or now, s.message_id) < mine)
        ]
        allowed_at = next_allowed_at(limits, counted, now)
        if allowed_at is None:
            continue
        held_back.add(row.message_id)
        if row.command.limit_policy == "drop":
            verdict.stopped.append((p, outcomes.failed(row.message_id, f"dropped: {why}", "dropped")))
        else:
            verdict.stopped.append((p, outcomes.deferred(row.message_id, allowed_at, f"{why}; deferred")))
    return [p for p in pending if p.row.message_id not in held_back]


async def _broadcast_rates(
    pool: asyncpg.Pool, pending: list[Pending], rates: BroadcastRates, now: float, verdict: Verdict
) -> list[Pending]:
    by_broadcast: dict[str, list[Pending]] = defaultdict(list)
    for p in pending:
        broadcast = broadcast_of(p.row.journey_id)
        if broadcast is not None:
            by_broadcast[broadcast].append(p)
    if not by_broadcast:
        return pending
    limited = await rates.rates(pool, set(by_broadcast))
    held_back: set[str] = set()
    for broadcast, rate in limited.items():
        fresh: list[Pending] = []
        for p in by_broadcast[broadcast]:
            slot = p.row.rate_slot
            if slot is not None and now - _SLOT_GRACE_SECONDS <= slot <= now + _SLOT_EARLY_SECONDS:
                continue  # its reserved slot is now
            if slot is not None and slot > now:
                held_back.add(p.row.message_id)
                verdict.stopped.append((p, outcomes.deferred(
                    p.row.message_id, slot, f"broadcast rate {rate:g}/s", rate_slot=slot)))
                continue
            fresh.append(p)
        if not fresh:
            continue
        slots = await _reserve(pool, broadcast, rate, now, len(fresh))
        for p, slot in zip(fresh, slots, strict=True):
            if slot <= now:
                continue
            held_back.add(p.row.message_id)
            verdict.stopped.append((p, outcomes.deferred(
                p.row.message_id, slot, f"broadcast rate {rate:g}/s", rate_slot=slot)))
    return [p for p in pending if p.row.message_id not in held_back]


async def _reserve(pool: asyncpg.Pool, broadcast: str, rate: float, now: float, count: int) -> list[float]:
    """Take `count` send slots of the broadcast's rate, shared by every loop of every worker."""
    async with pool.acquire() as conn, conn.transaction():
        tat = await conn.fetchval("SELECT rate_tat FROM broadcasts WHERE id = $1 FOR UPDATE", broadcast)
        slots, tat = schedule(tat, rate, now, count)
        await conn.execute("UPDATE broadcasts SET rate_tat = $2 WHERE id = $1", broadcast, tat)
    return slots
