"""Profile a worker under the processing load with py-spy (installed for the bench only).

    .venv/bin/python -m bench.experiments.profile_worker [events] [envelope] [seconds] [worker-module]

Writes collapsed stacks to /tmp/nudge-profile-<envelope>.txt and prints the heaviest frames.
"""

from __future__ import annotations

import collections
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.harness import SmtpServer
from bench.sections.processing import measure

PY_SPY = Path(sys.executable).parent / "py-spy"


def summarize(path: Path, top: int = 40) -> None:
    """Inclusive share of samples per function, from collapsed stacks."""
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        n = int(count)
        total += n
        for frame in set(stack.split(";")):
            inclusive[frame] += n
    print(f"{total} samples")
    for frame, n in inclusive.most_common(top):
        print(f"{100 * n / total:5.1f}%  {frame[:150]}")


def main() -> None:
    events = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    envelope = int(sys.argv[2]) if len(sys.argv) > 2 else 100
    seconds = int(sys.argv[3]) if len(sys.argv) > 3 else 15
    module = sys.argv[4] if len(sys.argv) > 4 else None
    out = Path(f"/tmp/nudge-profile-{envelope}.txt")
    procs: list[subprocess.Popen[bytes]] = []

    def attach(pids: list[int]) -> None:
        procs.append(subprocess.Popen([str(PY_SPY), "record", "-p", str(pids[0]), "-d", str(seconds),
                                       "-r", "250", "--threads", "-f", "raw", "-o", str(out)],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

    with SmtpServer() as sink, tempfile.TemporaryDirectory() as tmp:
        result = measure(Path(tmp), sink.url, 20_000, events, envelope, worker_module=module, on_load=attach)
    for proc in procs:
        proc.wait(timeout=seconds + 30)
    print(result)
    summarize(out)


if __name__ == "__main__":
    main()
