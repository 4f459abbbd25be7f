"""Plain-text tables and timestamps for the read-side commands (`nudge activity`, `nudge events`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime


def iso(t: float | None) -> str:
    """Unix seconds as `2026-03-02T10:00:00Z`; `-` for None."""
    if t is None:
        return "-"
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    """Lines of a left-aligned table, columns two spaces apart; the last column is not padded."""
    cells = [[str(c) for c in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=False)) + "  " + row[-1]
        if len(row) > 1 else row[0]
        for row in cells
    ]
