"""Browser fixtures: Nudge (worker + API on the example campaigns) and Debian's Chromium driven by
Playwright. Screenshots go to var/screenshots/ (NUDGE_SCREENSHOT_DIR to change it)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy.local import postgres
from deploy.local.runner import NudgeProcesses, delete_topics, free_port, nudge_env

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
# Headless, and nothing that talks to the network on its own.
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]
USER, PASSWORD = "ops", "browser-test-password"


class _Sink:
    """An SMTP server that accepts everything: the tests read the console, not the mail."""

    async def handle_DATA(self, server, session, envelope):
        return "250 2.0.0 Message accepted"


@pytest.fixture(scope="session")
def screenshots() -> Path:
    """Where the tests save what the browser showed."""
    folder = Path(os.environ.get("NUDGE_SCREENSHOT_DIR", ROOT / "var" / "screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def nudge(tmp_path_factory) -> Iterator[NudgeProcesses]:
    """A worker and an API with the repository's example campaigns and a console login."""
    from aiosmtpd.controller import Controller

    from deploy.local import kafka, stack

    stack.up()
    kafka_bootstrap = kafka.BOOTSTRAP
    smtp = Controller(_Sink(), hostname="127.0.0.1", port=free_port())
    smtp.start()
    tmp = tmp_path_factory.mktemp("browser")
    app_id = f"b{uuid.uuid4().hex[:10]}"
    database = f"nudge_test_{app_id}"
    env = nudge_env(
        app_id=app_id, database_url=postgres.create_database(database),
        smtp_url=f"smtp://127.0.0.1:{smtp.port}", data_dir=tmp / "data", campaigns_dir=ROOT,
        kafka_bootstrap=kafka_bootstrap,
    )
    env.update(NUDGE_CONSOLE_USER=USER, NUDGE_CONSOLE_PASSWORD=PASSWORD)
    processes = NudgeProcesses(env, tmp / "logs")
    try:
        processes.start_worker()
        processes.start_api()
        yield processes
    finally:
        processes.stop()
        smtp.stop()
        delete_topics(kafka_bootstrap, app_id)
        postgres.drop_database(database)


@pytest.fixture(scope="module")
def browser(nudge):
    """Debian's Chromium, headless, through Playwright (Playwright's own browser download is not used).

    Started after `nudge` and closed before it: Playwright's sync API holds an event loop, and
    the stack helpers that start and stop Nudge run their own.
    """
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, nudge):
    """A fresh browser context (no cookies) with a wide window; fails the test on a page error."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=nudge.base_url)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    tab.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    # A test that provokes an error status on purpose removes it from here.
    tab.console_errors = errors  # type: ignore[attr-defined]
    yield tab
    context.close()
    assert errors == [], errors
