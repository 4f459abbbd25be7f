"""Deduplication of producer event ids: which ids a person sent lately, in a few bytes each.

Pure. The window is stated by count and by time: an id is recognised as a duplicate when it
arrives again within `window_days` days of the first time (by the event's own timestamp) and
the person sent fewer than `limit` other ids since. Each id costs 10 bytes of the person's
record: an 8-byte hash of the id and the day it was seen, oldest first. A 64-bit hash makes a
false duplicate about one in 10^16 lookups.
"""

from __future__ import annotations

import hashlib
import struct

_ENTRY = struct.Struct(">8sH")  # id hash, day number (days since 1970, good until 2149)
ENTRY_BYTES = _ENTRY.size


def _hash(event_id: str) -> bytes:
    return hashlib.blake2b(event_id.encode(), digest_size=8).digest()


def _day(at: float) -> int:
    return min(max(int(at // 86400), 0), 0xFFFF)


def _live_from(seen: bytes, at: float, window_days: int) -> int:
    """The byte offset of the first entry still inside the time window at `at`."""
    oldest = _day(at) - window_days
    offset = 0
    while offset < len(seen) and _ENTRY.unpack_from(seen, offset)[1] < oldest:
        offset += ENTRY_BYTES
    return offset


def seen_before(seen: bytes, event_id: str, at: float, window_days: int) -> bool:
    """Whether `event_id` is among the ids remembered and still inside the window at `at`."""
    digest = _hash(event_id)
    start = _live_from(seen, at, window_days)
    found = seen.find(digest, start)
    while found != -1:
        if found % ENTRY_BYTES == 0:
            return True
        found = seen.find(digest, found + 1)
    return False


def remember(seen: bytes, event_id: str, at: float, limit: int, window_days: int) -> bytes:
    """`seen` with `event_id` added and entries past the window or the count limit dropped."""
    if limit <= 0:
        return b""
    start = _live_from(seen, at, window_days)
    kept = seen[start:] + _ENTRY.pack(_hash(event_id), _day(at))
    excess = len(kept) - limit * ENTRY_BYTES
    return kept[excess:] if excess > 0 else kept


def merge_seen(ours: bytes, theirs: bytes, limit: int) -> bytes:
    """Two people's remembered ids as one (a merge): theirs first, then ours, bounded."""
    known = {ours[i : i + ENTRY_BYTES] for i in range(0, len(ours), ENTRY_BYTES)}
    extra = b"".join(
        theirs[i : i + ENTRY_BYTES]
        for i in range(0, len(theirs), ENTRY_BYTES)
        if theirs[i : i + ENTRY_BYTES] not in known
    )
    entries = [
        (extra + ours)[i : i + ENTRY_BYTES] for i in range(0, len(extra + ours), ENTRY_BYTES)
    ]
    # Oldest first by day, so the time window keeps trimming from the front.
    entries.sort(key=lambda entry: _ENTRY.unpack(entry)[1])
    return b"".join(entries[-limit:]) if limit > 0 else b""
