"""`nudge deliver`: delivery loops in a process of their own, scaled apart from the workers."""

from __future__ import annotations

import asyncio
import signal
import socket

import asyncpg
import click

from streams.settings import Settings, SettingsError, require_secrets


@click.command()
@click.option("--loops", type=int, default=None,
              help="Delivery loops in this process (default: NUDGE_DELIVERY_LOOPS, at least 1).")
@click.option("--check", is_flag=True,
              help="Exit 0 if a delivery loop on this host renewed its name lately (a health probe).")
def deliver(loops: int | None, check: bool) -> None:
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
    if check:
        try:
            alive = asyncio.run(_loops_alive_here(settings))
        except (OSError, asyncpg.PostgresError) as exc:
            raise click.ClickException(f"cannot read the delivery loops' heartbeats: {exc}") from exc
        if not alive:
            raise click.ClickException(f"no delivery loop on {socket.gethostname()} renewed its name lately")
        click.echo(f"{alive} delivery loop(s) alive on {socket.gethostname()}")
        return
    configure(settings.log_format)
    count = loops if loops is not None else max(1, settings.delivery_loops)
    if count < 1:
        raise click.BadParameter("at least one loop", param_hint="--loops")
    asyncio.run(_run(settings, count))


async def _loops_alive_here(settings: Settings) -> int:
    """How many delivery loop names this host's processes renewed within three leases."""
    from streams.database import connect

    conn = await connect(settings.database_url, settings.app_id)
    try:
        return int(await conn.fetchval(
            "SELECT count(*) FROM delivery_loops WHERE host = $1"
            " AND heartbeat_at > now() - make_interval(secs => $2)",
            socket.gethostname(), 3 * settings.delivery_lease_seconds,
        ))
    finally:
        await conn.close()


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
