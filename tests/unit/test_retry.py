"""One retry helper (streams/retry.py) and the webhooks' bounded idempotency set."""

from __future__ import annotations

import pytest

from agents.sender.webhooks import RecentIds
from streams.retry import backoff, retry


class Flaky:
    """Fails `failures` times with `error`, then returns "done"."""

    def __init__(self, failures: int, error: Exception) -> None:
        self.failures, self.error, self.calls = failures, error, 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return "done"


class Waits:
    def __init__(self) -> None:
        self.seconds: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.seconds.append(delay)


async def test_retry_returns_once_the_action_succeeds_after_waits_that_double_to_the_cap() -> None:
    waits = Waits()
    action = Flaky(5, OSError("down"))
    assert await retry(action, "x", first=1.0, cap=4.0, sleep=waits) == "done"
    assert waits.seconds == [1.0, 2.0, 4.0, 4.0, 4.0]


async def test_retry_gives_up_after_its_attempts_and_raises_the_last_error() -> None:
    waits = Waits()
    action = Flaky(10, OSError("still down"))
    with pytest.raises(OSError, match="still down"):
        await retry(action, "x", attempts=3, sleep=waits)
    assert action.calls == 3 and len(waits.seconds) == 2


async def test_retry_does_not_retry_what_it_was_not_told_to() -> None:
    action = Flaky(1, KeyError("a bug"))
    with pytest.raises(KeyError):
        await retry(action, "x", on=OSError, sleep=Waits())
    assert action.calls == 1


def test_jitter_keeps_a_wait_in_the_upper_half() -> None:
    assert backoff(3, first=1.0, cap=100.0, jitter=0.0) == 2.0
    assert backoff(3, first=1.0, cap=100.0, jitter=0.999) == pytest.approx(4.0, rel=1e-3)


def test_recent_ids_forget_the_oldest_beyond_their_capacity() -> None:
    seen = RecentIds(3)
    assert [seen.add(k) for k in ("a", "b", "c", "a", "d")] == [True, True, True, False, True]
    assert len(seen) == 3
    assert seen.add("b") is True  # forgotten: "b" was the oldest when "d" came
    assert seen.add("a") is False


async def test_a_webhook_is_retried_until_it_answers_2xx(monkeypatch: pytest.MonkeyPatch) -> None:
    from aiohttp import web

    from agents.sender import webhooks
    from schemas.commands import CallWebhook

    monkeypatch.setattr(webhooks, "BASE_DELAY_SECONDS", 0.01)
    answers = [500, 503, 200]
    keys: list[str] = []

    async def hook(request: web.Request) -> web.Response:
        keys.append(request.headers["Idempotency-Key"])
        return web.Response(status=answers[len(keys) - 1])

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        command = CallWebhook(call_id="c1", person="ana", url=f"http://127.0.0.1:{port}/hook", decided_at=0.0)
        assert await webhooks.call_with_retries(command) is True
        assert keys == ["c1", "c1", "c1"]
    finally:
        await runner.cleanup()
