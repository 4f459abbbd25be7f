"""The API SIGKILLed under load: clients retry what was not answered 200, and every signup that
was answered 200 is emailed exactly once and reaches the read model."""

from __future__ import annotations

import random
import time

import pytest

from deploy.local.fault_counts import summary, violations

pytestmark = [pytest.mark.integration, pytest.mark.faults]


def test_the_api_killed_at_random_moments_loses_no_accepted_signup(deployment, size, seed, record):
    nudge = deployment()
    rng = random.Random(seed)
    load = nudge.load(size.rate).start()
    for _ in range(size.kills):
        time.sleep(rng.uniform(*size.kill_gap))
        nudge.kill_api()
    time.sleep(rng.uniform(*size.kill_gap))
    stats = load.stop()

    result = nudge.count(
        "API SIGKILL", size=size, seed=seed, faults=size.kills, stats=stats, since=time.time(),
    )
    record(result)
    # Nothing was killed inside an SMTP exchange: no duplicate at all is allowed.
    assert violations(result, allow_exposed_duplicates=False) == [], summary(result)
