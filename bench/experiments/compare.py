"""Stock worker against experiment workers on the processing load, alternating, repeated.

    .venv/bin/python -m bench.experiments.compare [events] [envelope] [repeats] module [module...]

Worker CPU per input is the figure to compare: it moves less than inputs/s when other work
shares the machine.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
from pathlib import Path

from bench.harness import SmtpServer
from bench.sections.processing import measure


def main() -> None:
    events, envelope, repeats = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    variants: list[str | None] = [None, *sys.argv[4:]]
    figures: dict[str, list[tuple[float, float]]] = {str(v): [] for v in variants}
    with SmtpServer() as sink, tempfile.TemporaryDirectory() as tmp:
        for _ in range(repeats):
            for variant in variants:
                r = measure(Path(tmp), sink.url, 20_000, events, envelope, worker_module=variant, label="cmp")
                figures[str(variant)].append((r["inputs_per_s"], r["cpu_us_per_input"]))
                print(f"{variant or 'stock'}: {r['inputs_per_s']} inputs/s, {r['cpu_us_per_input']} µs CPU/input",
                      flush=True)
    for variant, runs in figures.items():
        print(f"{variant if variant != 'None' else 'stock'}: median {statistics.median(r for r, _ in runs):.0f} inputs/s, "
              f"{statistics.median(c for _, c in runs):.0f} µs CPU/input over {len(runs)} runs")


if __name__ == "__main__":
    main()
