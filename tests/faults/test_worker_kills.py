"""A worker SIGKILLed at random moments under a steady signup load loses and duplicates nothing.

Counted at a real SMTP server and in the read model: every accepted person gets one `welcome`
and one `followup`, has a `people` row and one `entered` event; duplicates only where a kill
landed between the relay's 250 and `sent` being recorded (counted from the outbox timeline).
"""

from __future__ import annotations

import random
import time

import pytest

from deploy.local.fault_counts import summary, violations
from deploy.local.fault_harness import WAIT_SECONDS

pytestmark = [pytest.mark.integration, pytest.mark.faults]


def kill_repeatedly(nudge, size, rng, *, empty_data_dir: bool) -> tuple[int, float]:
    """Kill the worker `size.kills` times under load (the last one after the load has stopped),
    restarting it each time; return the kills and the moment the last worker was back."""
    load = nudge.load(size.rate).start()
    for _ in range(size.kills - 1):
        time.sleep(rng.uniform(*size.kill_gap))
        nudge.kill_worker()
        if empty_data_dir:
            nudge.empty_data_dir()
        nudge.start_worker()
    time.sleep(rng.uniform(*size.kill_gap))
    stats = load.stop()
    # And once more when the load has gone quiet: timers and sends still in flight.
    time.sleep(rng.uniform(0.0, WAIT_SECONDS))
    nudge.kill_worker()
    if empty_data_dir:
        nudge.empty_data_dir()
    return stats, nudge.start_worker()


@pytest.mark.fault_pending("issue 10 commit order (lead) and issue 11 delivery leases (delivery)")
def test_a_worker_killed_at_random_moments_restarted_on_its_data_dir_loses_nothing(
    deployment, size, seed, record
):
    nudge = deployment()
    stats, back = kill_repeatedly(nudge, size, random.Random(seed), empty_data_dir=False)

    result = nudge.count(
        "worker SIGKILL, same data dir", size=size.name, seed=seed, faults=size.kills,
        stats=stats, since=back, within=size.within_seconds + WAIT_SECONDS,
        settle=size.settle_seconds,
    )
    record(result)
    assert violations(result) == [], summary(result)


@pytest.mark.fault_pending("issue 10 commit order (lead) and issue 11 delivery leases (delivery)")
def test_a_worker_killed_at_random_moments_restarted_on_an_empty_data_dir_loses_nothing(
    deployment, size, seed, record
):
    nudge = deployment()
    stats, back = kill_repeatedly(nudge, size, random.Random(seed), empty_data_dir=True)

    result = nudge.count(
        "worker SIGKILL, empty data dir", size=size.name, seed=seed, faults=size.kills,
        stats=stats, since=back, within=size.within_seconds + WAIT_SECONDS,
        settle=size.settle_seconds,
    )
    record(result)
    assert violations(result) == [], summary(result)
