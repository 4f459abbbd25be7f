"""Noticing that files changed, without reading them: names, sizes and modification times."""

from __future__ import annotations

from pathlib import Path

Fingerprint = tuple[tuple[str, int, int], ...]


def fingerprint(folders: list[Path], pattern: str) -> Fingerprint:
    """A value that changes when a file matching `pattern` in `folders` is added, removed or edited."""
    files = []
    for folder in folders:
        if folder.is_dir():
            for path in sorted(folder.glob(pattern)):
                stat = path.stat()
                files.append((str(path), stat.st_size, stat.st_mtime_ns))
    return tuple(files)
