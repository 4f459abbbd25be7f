"""The scan agent: on a partition's `ScanStart`, walk that partition's people in RocksDB.

A broadcast sends the template to each segment member (message id = hash(broadcast, person),
so a rescan after a crash re-emits ids the outbox already has); a re-evaluation sends every
person a `Reevaluate` input, in envelopes, on their own partition. Progress (and the last key
done, after a producer flush) goes to PostgreSQL, so a restarted scan resumes there.

Also: a timer notices new or edited segment definitions and starts one re-evaluation scan for
them; PostgreSQL (`segment_definitions`) makes sure only one worker does.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

import faust
import orjson
from faust.types import TP

from agents.broadcast.plan import new_scan_id, plan_reevaluation
from agents.broadcast.publish import scans_topic
from agents.broadcast.sends import broadcast_send, is_member
from agents.broadcast.store import PartitionProgress, create_scan, load_progress, record_definitions, save_progress
from agents.person.campaign_source import campaign_source
from schemas.broadcasts import ScanStart
from schemas.inputs import Input, Reevaluate
from schemas.person import PersonState
from schemas.wire import encode_command, encode_envelope
from streams.app import app, input_topic, people, sends_topic, settings
from streams.database import get_pool

log = logging.getLogger(__name__)

broadcasts_topic = app.topic(
    scans_topic(settings.app_id),
    schema=faust.Schema(key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"),
    partitions=settings.partitions,
)

# Save progress this often (people scanned, or seconds), after flushing what was enqueued.
_CHECKPOINT_EVERY = 2000
_CHECKPOINT_SECONDS = 1.0
# Re-evaluation inputs per envelope (one Kafka message).
_ENVELOPE = 500
# Yield to the event loop this often, so the person agent keeps consuming during a scan.
_YIELD_EVERY = 200


class PartitionNotOwned(RuntimeError):
    """This worker no longer owns the partition (a rebalance); its new owner resumes the scan."""


@app.agent(broadcasts_topic)
async def scan_agent(stream: Any) -> None:
    """Run each partition's scan to its end, one at a time."""
    async for event in stream.events():
        try:
            start = ScanStart.model_validate_json(event.value)
        except ValueError as exc:
            log.error("ignored an invalid scan start: %s", exc)
            continue
        try:
            await run_scan(start, event.message.partition)
        except PartitionNotOwned as exc:
            log.warning("scan %s stopped: %s", start.id, exc)


def _partition_db(partition: int) -> Any:
    """The RocksDB of one people partition this worker actively owns (Faust keeps one per partition)."""
    store = people.data
    tp = TP(topic=people.changelog_topic.get_topic_name(), partition=partition)
    if tp not in app.assignor.assigned_actives():
        raise PartitionNotOwned(f"partition {partition} of the people table is not assigned here")
    # Private Faust API: the per-partition DB and the key it keeps its offset under.
    return store._db_for_partition(partition), store.offset_key


async def run_scan(start: ScanStart, partition: int) -> PartitionProgress:
    """Scan one partition for `start`, resuming after the last checkpoint; return the final progress."""
    pool = await get_pool(settings)
    progress = await load_progress(pool, start.id, partition)
    if progress.done:
        return progress
    db, offset_key = _partition_db(partition)
    it = db.iter()
    if progress.last_key is None:
        it.seek_to_first()
    else:
        resume = progress.last_key.encode()
        it.seek(resume)
        if it.valid() and it.key() == resume:
            it.next()
    log.info("scan %s (%s) of partition %d starts after %s", start.id, start.kind, partition, progress.last_key)
    began, last_checkpoint, since_checkpoint = time.monotonic(), time.monotonic(), 0
    enqueued_here = 0
    envelope: list[Input] = []
    while True:
        if not it.valid():
            break
        key, value = it.key(), it.value()
        it.next()
        if key == offset_key or not value:
            continue
        progress.scanned += 1
        since_checkpoint += 1
        person = key.decode()
        now = time.time()
        if start.kind == "reevaluate":
            envelope.append(Reevaluate(person=person, at=now, reason=start.reason or start.id))
            if len(envelope) >= _ENVELOPE:
                await _send_envelope(envelope, partition)
                progress.enqueued += len(envelope)
                enqueued_here += len(envelope)
                envelope = []
        else:
            assert start.segment is not None
            raw = orjson.loads(value)
            if is_member(raw, start.segment):
                command = broadcast_send(PersonState.model_validate(raw), start, now)
                if command is not None:
                    await sends_topic.send(key=command.message_id.encode(), value=encode_command(command))
                    progress.enqueued += 1
                    enqueued_here += 1
        if start.rate and enqueued_here:
            # Rate limit: never ahead of `rate` per second since this run began.
            ahead = enqueued_here / start.rate - (time.monotonic() - began)
            if ahead > 0:
                await asyncio.sleep(ahead)
        if progress.scanned % _YIELD_EVERY == 0:
            await asyncio.sleep(0)
        if since_checkpoint >= _CHECKPOINT_EVERY or time.monotonic() - last_checkpoint >= _CHECKPOINT_SECONDS:
            if envelope:
                await _send_envelope(envelope, partition)
                progress.enqueued += len(envelope)
                envelope = []
            progress.last_key = person
            await _checkpoint(pool, start, partition, progress)
            last_checkpoint, since_checkpoint = time.monotonic(), 0
            # A rebalance may have moved the partition away while we slept.
            _partition_db(partition)
    if envelope:
        await _send_envelope(envelope, partition)
        progress.enqueued += len(envelope)
    progress.done = True
    await _checkpoint(pool, start, partition, progress)
    elapsed = time.monotonic() - began
    log.info(
        "scan %s of partition %d done: %d scanned, %d enqueued in %.1fs",
        start.id, partition, progress.scanned, progress.enqueued, elapsed,
    )
    return progress


async def _send_envelope(inputs: list[Input], partition: int) -> None:
    await input_topic.send(
        key=inputs[0].person.encode(), value=encode_envelope(inputs), partition=partition
    )


async def _checkpoint(pool: Any, start: ScanStart, partition: int, progress: PartitionProgress) -> None:
    # What the checkpoint counts must be in Kafka before the key moves past it.
    await app.producer.flush()
    await save_progress(pool, start.id, partition, progress)


def _definitions() -> dict[str, str]:
    segments = campaign_source.current.segments
    return {
        segment_id: json.dumps(s.model_dump(mode="json", by_alias=True, exclude_defaults=True), sort_keys=True)
        for segment_id, s in segments.items()
        if not s.manual
    }


@app.timer(interval=5.0)
async def backfill_new_segments() -> None:
    """When segment definitions are new or edited, start one re-evaluation of every person."""
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
        await broadcasts_topic.send(
            key=start.id.encode(), value=start.model_dump_json().encode(), partition=start.partition
        )
    log.info("segment backfill %s started for %s", scan_id, ", ".join(sorted(fresh)))
