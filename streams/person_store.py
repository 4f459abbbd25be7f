"""The people table's local RocksDB store, read and written the way checkpoints need.

Every access to Faust's store outside `table[key] = value` lives here, so a Faust upgrade has
one place to check. What this relies on (faust-streaming 0.15.3, `faust/stores/rocksdb.py`):

- `Store.apply_changelog_batch(batch, to_key, to_value)` writes each event's
  `message.key`/`message.value` (None deletes) into the RocksDB of `message.partition` in one
  `WriteBatch`, then records the highest `message.offset` per `message.tp` as the persisted
  changelog offset. Faust's own recovery uses it; so do checkpoints, with the offsets Kafka
  acknowledged for the changelog records they produced. Recovery then resumes the changelog
  after that offset, so a record produced but not yet written locally is re-applied.
- `Store._db_for_partition(partition)` (private) returns that partition's rocksdict `Rdict`,
  opening it if needed; reads by partition and the scan of one partition's keys use it.
- `Store.offset_key` is the key Faust keeps the persisted offset under, inside the same DB.
- The table's changelog topic is `<app_id>-<table>-changelog`, partition p holding partition p.

A Faust upgrade that changes any of these breaks checkpoints: the tests in
`tests/integration/test_checkpoints.py` (a worker restoring from the changelog alone ends with
exactly the state the old one had) are the ones that would say so.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from faust.types import TP
from faust.types.tables import TableT

# Keys the people table holds that are not people (erasure markers): they start with NUL,
# which no person id can (ids are refused with control characters at ingestion).
RESERVED_PREFIX = b"\x00"


@dataclass(frozen=True)
class _Message:
    tp: TP
    offset: int
    partition: int
    key: bytes
    value: bytes | None


@dataclass(frozen=True)
class _ChangelogEvent:
    """The shape `apply_changelog_batch` reads: an object with a `.message`."""

    message: _Message


class PersonStore:
    """Reads and checkpoint writes of the people table's local store."""

    def __init__(self, table: TableT) -> None:
        self._table = table
        self._store: Any = table.data

    @property
    def changelog_topic(self) -> str:
        """The people changelog's topic name."""
        return self._table.changelog_topic.get_topic_name()

    def get(self, partition: int, key: bytes) -> bytes | None:
        """The stored value of `key` in `partition`, or None."""
        value = self._store._db_for_partition(partition).get(key)
        return bytes(value) if value is not None else None

    def write(self, records: Iterable[tuple[int, bytes, bytes | None, int]]) -> None:
        """Write (partition, key, value or None, changelog offset) records in one batch per
        partition, and record each partition's highest changelog offset as persisted."""
        topic = self.changelog_topic
        events = [
            _ChangelogEvent(_Message(TP(topic, partition), offset, partition, key, value))
            for partition, key, value, offset in records
        ]
        if events:
            self._store.apply_changelog_batch(events, to_key=_same, to_value=_same)

    def persisted_offset(self, partition: int) -> int | None:
        """The changelog offset the local store has applied up to."""
        return self._store.persisted_offset(TP(self.changelog_topic, partition))

    def items(self, partition: int, after: bytes | None = None) -> Iterator[tuple[bytes, bytes]]:
        """The people of one partition in key order (after `after`, if given); markers skipped."""
        db = self._store._db_for_partition(partition)
        offset_key = self._store.offset_key
        it = db.iter()
        if after is None:
            it.seek_to_first()
        else:
            it.seek(after)
            if it.valid() and bytes(it.key()) == after:
                it.next()
        while it.valid():
            key, value = bytes(it.key()), it.value()
            it.next()
            if key == offset_key or key.startswith(RESERVED_PREFIX) or not value:
                continue
            yield key, bytes(value)


def _same(value: Any) -> Any:
    return value
