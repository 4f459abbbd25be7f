"""Scale: the processing run (envelopes) with one worker and with two, same workload."""

from __future__ import annotations

from typing import Any

from bench.sections.processing import measure


def run(ctx: Any) -> dict[str, Any]:
    size = max(ctx.envelope_sizes)
    results = {}
    for workers in (1, 2):
        results[f"workers_{workers}"] = measure(ctx.root, ctx.smtp.url, ctx.people, ctx.events, size,
                                                workers=workers, worker_module=ctx.worker_module,
                                                label=f"sc{workers}")
        ctx.log(f"scale: {workers} worker(s): {results[f'workers_{workers}']['inputs_per_s']} inputs/s")
    results["ratio_2_to_1"] = round(results["workers_2"]["inputs_per_s"] / results["workers_1"]["inputs_per_s"], 2)
    return results
