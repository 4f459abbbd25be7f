"""The Nudge benchmark: one command, every section, results beside the machine's raw Kafka limit.

    .venv/bin/python -m bench.run                       # quick sizes, every section
    .venv/bin/python -m bench.run --only ceiling,processing --events 50000
    .venv/bin/python -m bench.run --full                # the sizes the README reports

Starts (or reuses) the local stack; writes bench/results.json, bench/RESULTS.md, bench/latency.png.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.chdir(ROOT)  # the worker and API subprocesses run `-m streams.cli` from the repo

from bench.harness import SmtpServer, SmtpSink  # noqa: E402

SECTIONS = ["ingest", "ceiling", "processing", "latency", "timers", "state", "recovery", "scale"]


@dataclass
class Context:
    """Sizes and shared state handed to every section."""

    people: int
    events: int
    state_people: int
    timers: int
    latency_seconds: float
    background_rates: list[float]
    envelope_sizes: list[int]
    ceiling_inputs: int
    single_divisor: int
    root: Path
    smtp: SmtpSink
    worker_module: str | None = None
    api_module: str | None = None
    results: dict[str, Any] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)

    def log(self, message: str) -> None:
        print(f"[{time.monotonic() - self.started:7.1f}s] {message}", flush=True)


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(SECTIONS), help="comma-separated sections")
    parser.add_argument("--people", type=int, default=20_000, help="people in the processing workload")
    parser.add_argument("--events", type=int, default=40_000, help="inputs per processing run (envelopes)")
    parser.add_argument("--state-people", type=int, default=50_000, help="people held for state/recovery")
    parser.add_argument("--timers", type=int, default=20_000, help="timers falling due at once")
    parser.add_argument("--latency-seconds", type=float, default=20.0)
    parser.add_argument("--background-rates", default="2000,1000",
                        help="background events/s during latency; the first is the headline")
    parser.add_argument("--envelope-sizes", default="1,100", help="inputs per Kafka message to measure")
    parser.add_argument("--full", action="store_true",
                        help="the reported sizes: 1M people held, 100k timers, 200k inputs")
    parser.add_argument("--worker-module", default=None,
                        help="run workers from this module instead of `nudge worker` (bench/experiments)")
    parser.add_argument("--api-module", default=None,
                        help="run the API from this module instead of `nudge api` (bench/experiments)")
    parser.add_argument("--report-only", action="store_true",
                        help="rewrite RESULTS.md and latency.png from results.json, measure nothing")
    parser.add_argument("--out", type=Path, default=ROOT / "bench",
                        help="where results.json, RESULTS.md and latency.png go")
    args = parser.parse_args()
    if args.full:
        args.events, args.state_people, args.timers = 200_000, 1_000_000, 100_000
    return args


def main() -> None:
    args = parse()
    if args.report_only:  # rewrite RESULTS.md and latency.png from results.json, measure nothing
        from bench import report

        saved = json.loads((args.out / "results.json").read_text())
        report.write(args.out, saved["sections"], saved.get("args", {}))
        return
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = sorted(set(only) - set(SECTIONS))
    if unknown:
        raise SystemExit(f"unknown sections: {', '.join(unknown)} (known: {', '.join(SECTIONS)})")
    from bench import report
    from deploy.local import stack

    print("starting (or reusing) the local stack...", flush=True)
    stack.up()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    results_path = out / "results.json"
    previous = json.loads(results_path.read_text()) if results_path.exists() else {}
    with SmtpServer() as sink, tempfile.TemporaryDirectory(prefix="nudge-bench-") as tmp:
        ctx = Context(
            people=args.people, events=args.events, state_people=args.state_people, timers=args.timers,
            latency_seconds=args.latency_seconds,
            background_rates=[float(r) for r in args.background_rates.split(",")],
            envelope_sizes=[int(s) for s in args.envelope_sizes.split(",")],
            ceiling_inputs=max(100_000, args.events), single_divisor=4,
            root=Path(tmp), smtp=sink, worker_module=args.worker_module, api_module=args.api_module,
        )
        # Sections run alone keep the other sections' last figures in the files.
        ctx.results = dict(previous.get("sections", {}))
        try:
            for name in [s for s in SECTIONS if s in only]:
                ctx.log(f"section {name}...")
                began = time.monotonic()
                module = importlib.import_module(f"bench.sections.{name}")
                try:
                    ctx.results[name] = module.run(ctx)
                except Exception as exc:  # noqa: BLE001 - one failed section must not lose the others
                    traceback.print_exc()
                    ctx.results[name] = {"error": f"{type(exc).__name__}: {exc}"}
                ctx.results[name]["section_seconds"] = round(time.monotonic() - began, 1)
                ctx.results[name]["worker"] = args.worker_module or "nudge worker"
                if args.api_module:
                    ctx.results[name]["api"] = args.api_module
                ctx.log(f"section {name} done in {time.monotonic() - began:.0f}s")
                report.write(out, ctx.results, vars(args) | {"out": str(out)})
        finally:
            held = getattr(ctx, "held", None)
            if held is not None:  # the state section's deployment, when recovery did not take it
                held.stop()
    ctx.log(f"done; see {out / 'RESULTS.md'}")


if __name__ == "__main__":
    main()
