"""A worker SIGKILLed at random moments under a steady signup load loses and duplicates nothing.

Counted at a real SMTP server and in the read model: every accepted person gets one `welcome`
and one `followup`, has a `people` row and one `entered` event; duplicates only where a kill
landed between the relay's 250 and `sent` being recorded (counted from the outbox timeline).
Restarted on its own data dir (a crash), or on an empty one each time (a replaced machine:
the state comes back from the changelog).
"""

from __future__ import annotations

import random
import time

import pytest

from deploy.local.fault_counts import summary, violations
from deploy.local.fault_harness import WAIT_SECONDS

pytestmark = [pytest.mark.integration, pytest.mark.faults]


@pytest.mark.parametrize(
    "data_dir",
    ["its own data dir", "an empty data dir"],
)
def test_a_worker_killed_at_random_moments_and_restarted_loses_nothing(
    deployment, size, seed, record, data_dir
):
    nudge = deployment()
    rng = random.Random(seed)

    def kill_and_restart() -> float:
        nudge.kill_worker()
        if data_dir == "an empty data dir":
            nudge.empty_data_dir()
        return nudge.start_worker()

    load = nudge.load(size.rate).start()
    for _ in range(size.kills - 1):
        time.sleep(rng.uniform(*size.kill_gap))
        kill_and_restart()
    time.sleep(rng.uniform(*size.kill_gap))
    stats = load.stop()
    # The last kill lands after the load went quiet: timers and sends still in flight.
    time.sleep(rng.uniform(0.0, WAIT_SECONDS))
    back = kill_and_restart()

    result = nudge.count(
        f"worker SIGKILL, restarted on {data_dir}", size=size, seed=seed, faults=size.kills,
        stats=stats, since=back,
    )
    record(result)
    assert violations(result) == [], summary(result)
