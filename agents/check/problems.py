"""One problem `nudge campaigns check` found: where (file and line) and what to do about it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True, order=True)
class Problem:
    """An error fails the check; a warning is printed and does not (unless --strict)."""

    file: str
    line: int | None
    message: str
    severity: Literal["error", "warning"] = "error"

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        lead = "warning: " if self.severity == "warning" else ""
        return f"{lead}{where}: {self.message}"
