"""Log output for the worker and the API: plain text, or one JSON object per line (NUDGE_LOG_FORMAT=json).

JSON lines carry `ts` (ISO 8601, UTC), `level`, `logger`, `message`, the exception text when
there is one, and any `extra={...}` fields a call passed, so a log shipper needs no parsing rules.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import orjson

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"

# Attributes every LogRecord has; anything else on a record came from `extra=`.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """Formats a record as one line of JSON."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as a JSON object on one line."""
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        return orjson.dumps(entry, default=repr).decode()


def logging_config(log_format: str, level: str | int = "INFO") -> dict[str, Any]:
    """A `logging.config.dictConfig` mapping: one stderr handler in the chosen format."""
    if isinstance(level, str):
        level = level.upper()
    formatter: dict[str, Any] = (
        {"()": f"{__name__}.JsonFormatter"} if log_format == "json" else {"format": TEXT_FORMAT}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"nudge": formatter},
        "handlers": {
            "nudge": {"class": "logging.StreamHandler", "formatter": "nudge", "stream": "ext://sys.stderr"},
        },
        "root": {"level": level, "handlers": ["nudge"]},
    }


def configure(log_format: str, level: str | int = "INFO") -> None:
    """Set up the root logger for a process that Faust's worker does not configure (the API)."""
    import logging.config

    logging.config.dictConfig(logging_config(log_format, level))
