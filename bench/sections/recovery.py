"""Recovery: time for a new worker with an empty data dir to restore state after a SIGKILL.

The worker holding N people (the state section's, or one built here) is killed; a new worker
starts with an empty data dir and rebuilds the tables from their changelogs. Reported: spawn →
Faust's "Restore complete", spawn → Ready, and spawn → a marker input on every partition applied.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from bench.harness import log_time
from bench.sections.state import build


def run(ctx: Any) -> dict[str, Any]:
    deployment = getattr(ctx, "held", None)
    if deployment is None:
        deployment, _ = build(ctx, ctx.state_people)
    ctx.held = None
    try:
        deployment.workers[0].kill_worker()
        spawned_wall = time.time()
        spawned = time.monotonic()
        replacement = deployment.start_worker(fresh_data=True, timeout=1800)
        ready = time.monotonic() - spawned
        asyncio.run(deployment.warm_up(timeout=1800))
        marker = time.monotonic() - spawned
        log_path = replacement.log_dir / "worker-1.log"
        restored_at = log_time(log_path, "Restore complete") or log_time(log_path, "Recovery complete")
        people = ctx.state_people
        result = {
            "people": people,
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
