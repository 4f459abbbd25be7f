"""Recovery: time for a new worker with an empty data dir to restore state after a SIGKILL.

The worker holding N people (the state section's, or one built here) is killed; a new worker
starts with an empty data dir and rebuilds the tables from their changelogs. Reported: spawn →
Faust's "Restore complete", spawn → Ready, and spawn → a marker input on every partition applied.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from bench.harness import BenchError, log_time
from bench.sections.state import build
from deploy.local.runner import NotReady


def run(ctx: Any) -> dict[str, Any]:
    deployment = getattr(ctx, "held", None)
    if deployment is None:
        deployment, _ = build(ctx, ctx.state_people)
    ctx.held = None
    try:
        deployment.workers[0].kill_worker()
        spawned_wall = time.time()
        spawned = time.monotonic()
        limit = 120 + ctx.state_people / 1000  # generous: ~1 ms a person beyond two minutes
        log_path = deployment.root / f"logs-{len(deployment.workers)}" / "worker-1.log"
        try:
            deployment.start_worker(fresh_data=True, timeout=limit)
            ready = time.monotonic() - spawned
            asyncio.run(deployment.warm_up(timeout=limit))
        except (BenchError, NotReady) as exc:
            text = log_path.read_text(errors="replace") if log_path.exists() else ""
            return {"people": ctx.state_people, "restored": False,
                    "error": f"not restored within {limit:.0f}s: {exc}",
                    "recovery_errors_logged": text.count("Error in recovery"),
                    "first_recovery_error": next((l for l in text.splitlines() if "Error in recovery" in l), None)}
        marker = time.monotonic() - spawned
        restored_at = log_time(log_path, "Restore complete") or log_time(log_path, "Recovery complete")
        people = ctx.state_people
        result = {
            "people": people, "restored": True,
            "spawn_to_restore_complete_s": round(restored_at - spawned_wall, 1) if restored_at else None,
            "spawn_to_ready_s": round(ready, 1),
            "spawn_to_marker_applied_s": round(marker, 1),
            "note": "includes the killed worker's session timeout (10 s) before its partitions move",
        }
        result["marker_s_per_million_people"] = round(marker / people * 1_000_000, 1)
        ctx.log(f"recovery: {people} people, marker applied {marker:.1f}s after spawn")
        return result
    finally:
        deployment.stop()
