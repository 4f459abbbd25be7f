"""The SMTP relay down under load, then back: nothing is lost or sent twice, and everything that
fell due while it was down is sent within 30 s of it being back."""

from __future__ import annotations

import time

import pytest

from deploy.local.fault_counts import summary, violations

pytestmark = [pytest.mark.integration, pytest.mark.faults]


def test_mail_due_while_the_relay_was_down_is_sent_soon_after_it_is_back(
    deployment, sink, size, seed, record
):
    nudge = deployment()
    load = nudge.load(size.rate).start()
    time.sleep(size.load_margin_seconds)
    sink.stop()
    time.sleep(size.smtp_down_seconds)
    sink.start()
    back = time.time()
    stats = load.stop()

    result = nudge.count(
        f"SMTP down {size.smtp_down_seconds:.0f}s", size=size, seed=seed, faults=1,
        stats=stats, since=back,
    )
    record(result)
    assert violations(result, allow_exposed_duplicates=False) == [], summary(result)
