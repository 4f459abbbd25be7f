"""`nudge deliver`: delivery loops in a process of their own, scaled apart from the workers."""

from __future__ import annotations

import asyncio
import signal

import click

from streams.settings import Settings, SettingsError, require_secrets


@click.command()
@click.option("--loops", type=int, default=None,
              help="Delivery loops in this process (default: NUDGE_DELIVERY_LOOPS, at least 1).")
def deliver(loops: int | None) -> None:
    """Claim, render and send outbox messages until stopped (SIGTERM or Ctrl-C stops cleanly).

    Run as many as the relay can take; give workers NUDGE_DELIVERY_LOOPS=0 to leave delivery
    to these processes. Each shares the outbox through leases, so any number may run at once.
    """
    from streams.log_format import configure

    try:
        settings = Settings.from_env()
        # It signs the links in every email: the same secrets as a worker.
        require_secrets(settings, api=False)
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from exc
    configure(settings.log_format)
    count = loops if loops is not None else max(1, settings.delivery_loops)
    if count < 1:
        raise click.BadParameter("at least one loop", param_hint="--loops")
    asyncio.run(_run(settings, count))


async def _run(settings: Settings, loops: int) -> None:
    from agents.sender.service import run_delivery
    from streams.database import close_pool
    from streams.migrations import apply_migrations

    await apply_migrations(settings.database_url, settings.app_id)
    task = asyncio.create_task(run_delivery(settings, loops))
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, task.cancel)
    try:
        await task
    except asyncio.CancelledError:
        pass
    finally:
        await close_pool()
