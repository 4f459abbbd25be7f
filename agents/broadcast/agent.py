"""The scan agent: on a partition's `ScanStart`, walk that partition's people in RocksDB.

A broadcast sends every person of the partition a `BroadcastSend` input, a re-evaluation a
`Reevaluate` input, in envelopes, on their own partition; the person agent decides each (for a
broadcast: membership, suppression, subscription; message id = hash(broadcast, person), so a
rescan after a crash re-emits ids the outbox already has). Progress (and the last key
done, once Kafka has acknowledged everything it counts) goes to PostgreSQL, so a restarted
scan resumes there.

Also: a timer notices new or edited segment definitions and starts one re-evaluation scan for
them; PostgreSQL (`segment_definitions`) makes sure only one worker does.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Iterator
from typing import Any

import asyncpg
from faust.types import TP

from agents.broadcast.plan import new_scan_id, plan_reevaluation
from agents.broadcast.store import PartitionProgress, create_scan, load_progress, record_definitions, save_progress
from agents.person.campaign_source import campaign_source
from schemas.broadcasts import ScanStart
from schemas.errors import DeliveryError, StateError
from schemas.inputs import BroadcastSend, Input, Reevaluate
from schemas.wire import encode_envelope
from streams.app import Runtime
from streams.database import get_pool
from streams.person_store import PersonStore
from streams.retry import retry

log = logging.getLogger(__name__)

# Save progress this often (people scanned, or seconds), once what was enqueued is acknowledged.
_CHECKPOINT_EVERY = 2000
_CHECKPOINT_SECONDS = 1.0
# Re-evaluation inputs per envelope (one Kafka message).
_ENVELOPE = 500
# Yield to the event loop this often, so the person agent keeps consuming during a scan (and
# the producer gets a batch of sends at a time rather than one).
_YIELD_EVERY = 200
# A scan whose sends or checkpoint failed restarts from its last checkpoint this many times.
_ATTEMPTS = 5
_RETRY_SECONDS = 2.0


class PartitionNotOwned(StateError, RuntimeError):
    """This worker no longer owns the partition (a rebalance); its new owner resumes the scan."""


class ScanSendFailed(DeliveryError, RuntimeError):
    """Kafka refused what a scan enqueued; the scan resumes from its last checkpoint."""


# One start message at a time, so this worker's partitions are scanned one after another. Not
# `concurrency=`: Faust's commit skips a single unacknowledged offset between acknowledged ones
# (consumer._new_offset), so a long scan overtaken by a later start on its partition could be
# committed unfinished and never resumed after a crash.
def register(rt: Runtime) -> None:
    """Attach the scan agent and the segment-backfill timer to the app."""

    @rt.app.agent(rt.broadcasts_topic)
    async def scan_agent(stream: Any) -> None:
        """Run each partition's scan to its end, one at a time."""
        async for event in stream.events():
            try:
                start = ScanStart.model_validate_json(event.value)
            except ValueError as exc:
                log.error("ignored an invalid scan start: %s", exc)
                continue
            await _run_with_retries(rt, start, event.message.partition)

    @rt.app.timer(interval=5.0)
    async def backfill_new_segments() -> None:
        """When segment definitions are new or edited, start one re-evaluation of every person."""
        await _backfill_new_segments(rt)


async def _run_with_retries(rt: Runtime, start: ScanStart, partition: int) -> None:
    # Bounded: a scan that keeps failing must not hold up the partitions queued behind it.
    try:
        await retry(lambda: run_scan(rt, start, partition), f"scan {start.id} of partition {partition}",
                    on=(ScanSendFailed, asyncpg.PostgresError, OSError), attempts=_ATTEMPTS,
                    first=_RETRY_SECONDS, cap=8 * _RETRY_SECONDS, log=log)
    except PartitionNotOwned as exc:
        log.warning("scan %s stopped: %s", start.id, exc)
    except (ScanSendFailed, asyncpg.PostgresError, OSError) as exc:
        log.error("scan %s of partition %d gave up after %d attempts (%s); broadcast_progress shows "
                  "it unfinished, with the last key done", start.id, partition, _ATTEMPTS, exc)


def _check_owned(rt: Runtime, partition: int) -> None:
    """Raise PartitionNotOwned unless this worker actively owns the people partition."""
    tp = TP(topic=rt.people.changelog_topic.get_topic_name(), partition=partition)
    if tp not in rt.app.assignor.assigned_actives():
        raise PartitionNotOwned(f"partition {partition} of the people table is not assigned here")


def _partition_people(rt: Runtime, partition: int, after: str | None) -> Iterator[str]:
    """The person ids of one owned partition, in key order, after `after`: all a scan reads."""
    _check_owned(rt, partition)
    store = PersonStore(rt.people)
    for key, _ in store.items(partition, after.encode() if after is not None else None):
        yield key.decode()


class _Enqueued:
    """What a scan handed to the producer since its last checkpoint, until Kafka acknowledges it.

    Straight to the producer, not through `Topic.send`: Faust's per-message bookkeeping there
    cost more than the scan itself. Nothing waits per message; `settle` waits for them all.
    """

    def __init__(self, rt: Runtime) -> None:
        self._producer = rt.app.producer
        self._pending: list[Awaitable[Any]] = []

    async def send(self, topic: str, key: bytes, value: bytes, partition: int | None = None) -> None:
        """Hand one message to the producer (returns once buffered, not acknowledged)."""
        self._pending.append(await self._producer.send(topic, key, value, partition, None, None))

    async def settle(self) -> None:
        """Wait until Kafka has acknowledged everything sent so far; ScanSendFailed if it refused any."""
        pending, self._pending = self._pending, []
        results = await asyncio.gather(*pending, return_exceptions=True)
        failed = [r for r in results if isinstance(r, BaseException)]
        if failed:
            raise ScanSendFailed(f"{len(failed)} of {len(results)} sends failed: {failed[0]!r}")


async def run_scan(rt: Runtime, start: ScanStart, partition: int) -> PartitionProgress:
    """Scan one partition for `start`, resuming after the last checkpoint; return the final progress."""
    pool = await get_pool(rt.settings)
    progress = await load_progress(pool, start.id, partition)
    if progress.done:
        return progress
    people = _partition_people(rt, partition, progress.last_key)
    log.info("scan %s (%s) of partition %d starts after %s", start.id, start.kind, partition, progress.last_key)
    input_name = rt.input_topic.get_topic_name()
    enqueued = _Enqueued(rt)
    began, last_checkpoint, since_checkpoint = time.monotonic(), time.monotonic(), 0
    enqueued_here = 0
    envelope: list[Input] = []
    # Bounded by the partition's size: the iterator only moves forward.
    for person in people:
        progress.scanned += 1
        since_checkpoint += 1
        # The person agent decides each one (membership, suppression, subscription) and
        # records the send in the person's history: the scan only walks the keys.
        envelope.append(_scan_input(start, person))
        if len(envelope) >= _ENVELOPE:
            await enqueued.send(input_name, envelope[0].person.encode(), encode_envelope(envelope), partition)
            progress.enqueued += len(envelope)
            enqueued_here += len(envelope)
            envelope = []
        if start.rate and start.kind == "reevaluate" and enqueued_here:
            # A broadcast's rate holds at delivery, across every worker (agents/sender/policy.py);
            # a re-evaluation's paces the scan: never ahead of `rate` per second since it began.
            ahead = enqueued_here / start.rate - (time.monotonic() - began)
            if ahead > 0:
                await asyncio.sleep(ahead)
        if progress.scanned % _YIELD_EVERY == 0:
            await asyncio.sleep(0)
        if since_checkpoint >= _CHECKPOINT_EVERY or time.monotonic() - last_checkpoint >= _CHECKPOINT_SECONDS:
            if envelope:
                await enqueued.send(input_name, envelope[0].person.encode(), encode_envelope(envelope), partition)
                progress.enqueued += len(envelope)
                enqueued_here += len(envelope)
                envelope = []
            progress.last_key = person
            # What the checkpoint counts must be in Kafka before the key moves past it.
            await enqueued.settle()
            await save_progress(pool, start.id, partition, progress)
            last_checkpoint, since_checkpoint = time.monotonic(), 0
            # A rebalance may have moved the partition away while we slept.
            _check_owned(rt, partition)
    if envelope:
        await enqueued.send(input_name, envelope[0].person.encode(), encode_envelope(envelope), partition)
        progress.enqueued += len(envelope)
    progress.done = True
    await enqueued.settle()
    await save_progress(pool, start.id, partition, progress)
    elapsed = time.monotonic() - began
    log.info(
        "scan %s of partition %d done: %d scanned, %d enqueued in %.1fs",
        start.id, partition, progress.scanned, progress.enqueued, elapsed,
    )
    return progress


def _scan_input(start: ScanStart, person: str) -> Input:
    """What a scan asks of one person's partition: re-evaluate, or decide a broadcast send."""
    if start.kind == "reevaluate":
        return Reevaluate(person=person, at=time.time(), reason=start.reason or start.id)
    assert start.template is not None and start.campaign is not None
    return BroadcastSend(
        person=person, at=time.time(), broadcast_id=start.id, campaign_id=start.campaign,
        campaign_version=start.campaign_version, template=start.template,
        segment=start.segment, transactional=start.transactional,
    )


def _definitions() -> dict[str, str]:
    segments = campaign_source.current.segments
    return {
        segment_id: json.dumps(s.model_dump(mode="json", by_alias=True, exclude_defaults=True), sort_keys=True)
        for segment_id, s in segments.items()
        if not s.manual
    }


async def _backfill_new_segments(rt: Runtime) -> None:
    settings = rt.settings
    definitions = _definitions()
    if not definitions:
        return
    pool = await get_pool(settings)
    scan_id = new_scan_id("reevaluate")
    fresh = await record_definitions(pool, definitions, scan_id)
    if not fresh:
        return
    starts = plan_reevaluation(
        settings.partitions, reason=f"segments changed: {', '.join(sorted(fresh))}", scan_id=scan_id
    )
    await create_scan(pool, starts)
    for start in starts:
        await rt.broadcasts_topic.send(
            key=start.id.encode(), value=start.model_dump_json().encode(), partition=start.partition
        )
    log.info("segment backfill %s started for %s", scan_id, ", ".join(sorted(fresh)))
