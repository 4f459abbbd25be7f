"""Read a recorded input file: JSON Lines, one input (or envelope of inputs) per line, in the format
producers write to the input topic (`schemas/input.schema.json`) and `nudge activity --export`
writes. A line that is not a valid input is reported with its number, never fatal."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from agents.simulate.replay import Recorded
from schemas.errors import InputError
from schemas.wire import InvalidInput, decode_input_items


class RecordingError(InputError, OSError):
    """The recording cannot be opened: check the path given to `nudge simulate` and that it is readable."""


def read_recording(path: Path, on_bytes: Callable[[int], None] | None = None) -> Iterator[Recorded]:
    """Every line of the file as a Recorded (blank lines and `#` comments skipped);
    `on_bytes` hears how many bytes each line took, for a progress bar."""
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise RecordingError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    with handle:
        for number, raw in enumerate(handle, start=1):
            if on_bytes is not None:
                on_bytes(len(raw))
            text = raw.strip()
            if not text or text.startswith(b"#"):
                continue
            try:
                items = decode_input_items(text)
                yield Recorded(line=number, inputs=tuple(i for i, _ in items), data=tuple(d for _, d in items))
            except InvalidInput as exc:
                yield Recorded(line=number, error=str(exc))
