"""The console in a real browser: log in, sign a person up over the Track API, watch the input
arrive, open the person, the welcome email's why, and the welcome campaign with the person at
their step. Each test saves a screenshot of what it saw."""

from __future__ import annotations

import re
import time
import uuid

import pytest
from playwright.sync_api import Page, expect

from deploy.local.runner import wait_for
from streams.console.client import ConsoleClient
from tests.browser.conftest import PASSWORD, USER

pytestmark = pytest.mark.integration

def log_in(page: Page, then: str = "/activity") -> None:
    page.goto(then)
    expect(page).to_have_url(re.compile(r"/login\?next="))
    page.fill("input[name=user]", USER)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(re.compile(re.escape(then) + "$"))


def sign_up(nudge, person: str) -> None:
    """Identify and sign `person` up over the Track API."""
    assert nudge.request("PUT", f"/api/v1/customers/{person}", {"email": f"{person}@example.com", "first_name": "Ana"})[0] == 200
    assert nudge.request("POST", f"/api/v1/customers/{person}/events", {"name": "signed_up", "data": {"plan": "trial"}})[0] == 200


@pytest.fixture(scope="module")
def person(nudge) -> str:
    """Someone who signed up and whose welcome email went out."""
    person = f"ana-{uuid.uuid4().hex[:6]}"
    sign_up(nudge, person)
    console = ConsoleClient(nudge.base_url, USER, PASSWORD)

    def welcome_sent() -> bool:
        status, page = console.get_json(f"/messages?person={person}")
        return status == 200 and any(m["template"] == "welcome" and m["status"] == "sent" for m in page["messages"])

    wait_for(welcome_sent, 60, 0.3, "the welcome email to be sent")
    return person


def test_a_wrong_password_is_refused_and_nothing_is_shown(page: Page, screenshots):
    page.goto("/people")
    page.fill("input[name=user]", USER)
    page.fill("input[name=password]", "not the password")
    page.click("button[type=submit]")
    expect(page.get_by_role("alert")).to_contain_text("wrong user name or password")
    assert page.locator("nav").count() == 0
    # The refused login answers 401, which the browser reports.
    page.console_errors[:] = [e for e in page.console_errors if "401" not in e]
    page.screenshot(path=screenshots / "login-refused.png")


def test_a_signup_appears_on_the_live_activity_page(page: Page, nudge, screenshots):
    person = f"bo-{uuid.uuid4().hex[:6]}"
    log_in(page)
    expect(page.locator("#live-status")).to_be_visible()
    sign_up(nudge, person)
    accepted = time.monotonic()
    row = page.locator("#activity-rows tr", has_text="track signed_up")
    # Without a reload: the page polls for newer inputs. (How fast is measured, not asserted here:
    # README, "Performance".)
    row.first.wait_for(timeout=30_000)
    print(f"the input showed up {time.monotonic() - accepted:.2f}s after its HTTP 200")
    expect(row.first).to_contain_text(person)
    expect(row.first).to_contain_text("entered welcome")
    page.screenshot(path=screenshots / "activity.png")


def test_the_person_page_shows_attributes_events_journeys_and_messages(page: Page, person, screenshots):
    log_in(page)
    page.fill("header input[name=q]", f"{person}@example.com")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(f"/people/{person}$"))
    expect(page.locator("#attributes")).to_contain_text("Ana")
    expect(page.locator("#events")).to_contain_text("signed_up")
    expect(page.locator("#journeys")).to_contain_text("welcome")
    expect(page.locator("#messages")).to_contain_text("welcome")
    page.screenshot(path=screenshots / "person.png", full_page=True)


def test_why_shows_the_trigger_event_and_the_rendered_subject(page: Page, person, screenshots):
    log_in(page, f"/people/{person}")
    page.locator("#messages tr", has_text="welcome").get_by_role("link", name="why").click()
    expect(page.locator("h1")).to_contain_text("Why welcome went to")
    expect(page.locator("#trigger .trigger-name")).to_have_text("signed_up")
    expect(page.locator("#trigger")).to_contain_text("trial")
    expect(page.locator("#subject")).to_have_text("Welcome to Nudge, Ana!")
    frame = page.frame_locator("iframe.email")
    expect(frame.locator("body")).to_contain_text("Your account is ready on the trial plan")
    # A full-page capture leaves the sandboxed (cross-origin) frame blank: grow the window instead.
    page.set_viewport_size({"width": 1280, "height": 1560})
    page.wait_for_timeout(300)
    page.screenshot(path=screenshots / "why.png")


def test_the_welcome_campaign_counts_the_person_at_their_step(page: Page, nudge, person, screenshots):
    log_in(page, "/campaigns/welcome")
    # After the welcome email the journey waits 48 h at step 1 (with anyone else signed up here).
    wait_step = page.locator("li.node[data-path='1'] > .box")
    expect(wait_step).to_contain_text("wait 2d")
    expect(wait_step.locator(".now b")).not_to_have_text("0")
    waiting_here = int(wait_step.locator(".now b").inner_text())
    expect(page.locator("li.node[data-path='0'] > .box .sends")).to_contain_text("sent")
    page.screenshot(path=screenshots / "campaign.png", full_page=True)
    wait_step.locator(".now").click()
    expect(page.locator("h1")).to_contain_text("Waiting at step 1 of welcome")
    rows = page.locator("table tbody tr")
    expect(rows).to_have_count(waiting_here)
    expect(page.locator("table")).to_contain_text(person)
