"""A worker paused (SIGSTOP) past its session timeout while another takes over, then resumed:
the zombie must not send what the other worker sent, and nothing is lost."""

from __future__ import annotations

import random
import time

import pytest

from deploy.local.fault_counts import summary, violations

pytestmark = [pytest.mark.integration, pytest.mark.faults]


def test_a_worker_paused_past_its_session_and_resumed_sends_nothing_twice(
    deployment, sink, size, seed, record
):
    # A slow relay keeps each sender inside its SMTP exchanges most of the time, so the pause
    # most likely freezes the zombie half-way through one (after its lease check, before DATA).
    sink.rcpt_delay = 0.1
    nudge = deployment()
    survivor = nudge.another_worker()
    nudge.start_worker(survivor)
    load = nudge.load(size.rate).start()
    time.sleep(size.load_margin_seconds + random.Random(seed).uniform(0.0, 2.0))
    nudge.pause_worker()
    time.sleep(size.pause_seconds)
    resumed = nudge.resume_worker()
    # A zombie may notice its freeze and stop itself; then it is restarted, as a supervisor
    # (systemd, Kubernetes) would, and takes its share of the partitions back.
    restarted = nudge.restart_if_exited(within=size.load_margin_seconds + 10.0)
    time.sleep(size.load_margin_seconds)
    stats = load.stop()
    back = max(resumed, restarted or resumed)

    result = nudge.count(
        f"worker paused {size.pause_seconds:.0f}s (zombie)", size=size, seed=seed, faults=1,
        stats=stats, since=back,
    )
    record(result)
    # Allowed: a copy the relay took while the pause froze the sender before `sent`, re-sent
    # by the survivor. Not allowed: the zombie sending, after it resumes, what was sent, even
    # where the delivery side counted the lease it had lost.
    assert violations(result, trust_metric=False) == [], summary(result)
