"""On the real stack: a journey that waits survives a SIGKILL and still sends exactly once."""

from __future__ import annotations

import time

import pytest

from deploy.local.runner import wait_for

pytestmark = pytest.mark.integration

ONBOARDING = """\
id: onboarding
trigger: {event: signed_up}
steps:
  - wait: 3s
  - branch:
      if: {event: created_project, since: entry}
      then: [{send: nice_project}]
      else: [{send: get_started}]
"""
TEMPLATES = {
    "nice_project": '---\nsubject: "Nice project, {{ customer.first_name }}"\n---\n<p>Well done.</p>\n',
    "get_started": '---\nsubject: "Get started, {{ customer.first_name }}"\n---\n<p>Create a project.</p>\n',
}


@pytest.fixture
def nudge(start_nudge):
    return start_nudge(
        {"campaigns/onboarding.yaml": ONBOARDING}
        | {f"templates/{name}.html": text for name, text in TEMPLATES.items()}
    )


def test_a_wait_then_branch_sends_the_branch_that_matches_what_happened(nudge, inbox):
    for person in ("ana", "bo"):
        nudge.request("PUT", f"/api/v1/customers/{person}", {"email": f"{person}@example.com", "first_name": person.title()})
        nudge.request("POST", f"/api/v1/customers/{person}/events", {"name": "signed_up"})
    nudge.request("POST", "/api/v1/customers/bo/events", {"name": "created_project"})

    wait_for(lambda: len(inbox.received) >= 2, 30, what="both branch emails")
    time.sleep(1)
    assert sorted(m.message["Subject"] for m in inbox.received) == ["Get started, Ana", "Nice project, Bo"]


def test_a_worker_killed_during_the_wait_sends_once_soon_after_the_due_time(nudge, inbox):
    nudge.request("PUT", "/api/v1/customers/cy", {"email": "cy@example.com", "first_name": "Cy"})
    nudge.request("POST", "/api/v1/customers/cy/events", {"name": "signed_up"})
    accepted = time.time()
    time.sleep(1.0)  # the journey is now waiting, its timer in the person's state
    nudge.kill_worker()

    nudge.start_worker()
    wait_for(lambda: inbox.received, 60, what="the email after the restart")
    delivered = time.time()
    time.sleep(3)
    assert [m.message["Subject"] for m in inbox.received] == ["Get started, Cy"]
    # Due at accepted + 3 s; the restart itself takes a while, so "soon" means: right
    # after the worker is back, not at some later sweep.
    assert delivered - accepted >= 3
