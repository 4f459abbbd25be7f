"""NUDGE_LOG_FORMAT=json: one JSON object per line, with extras and exceptions."""

from __future__ import annotations

import json
import logging

from streams.log_format import JsonFormatter, logging_config


def _record(**extra: object) -> logging.LogRecord:
    record = logging.LogRecord("nudge.test", logging.WARNING, __file__, 1, "sent %s", ("m1",), None)
    for key, value in extra.items():
        setattr(record, key, value)
    return record


def test_a_record_is_one_line_of_json_with_its_fields() -> None:
    line = JsonFormatter().format(_record(partition=3))
    entry = json.loads(line)
    assert "\n" not in line
    assert entry["level"] == "warning" and entry["logger"] == "nudge.test"
    assert entry["message"] == "sent m1" and entry["partition"] == 3
    assert entry["ts"].endswith("+00:00")


def test_an_exception_travels_inside_the_object() -> None:
    try:
        raise ValueError("bad input")
    except ValueError:
        import sys

        record = _record()
        record.exc_info = sys.exc_info()
    entry = json.loads(JsonFormatter().format(record))
    assert "ValueError: bad input" in entry["exception"]


def test_the_text_format_keeps_the_plain_layout() -> None:
    config = logging_config("text", "info")
    assert config["formatters"]["nudge"] == {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}
    assert config["root"]["level"] == "INFO"
    assert logging_config("json")["formatters"]["nudge"]["()"].endswith("JsonFormatter")
