"""`nudge worker`, `nudge api`, `nudge migrate` and `nudge dev`: running Nudge's processes."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import click

from streams.settings import Settings, SettingsError, require_secrets


@click.command()
@click.option("--loglevel", default="info", show_default=True)
def worker(loglevel: str) -> None:
    """Run a Faust worker: the person, sender, projector and broadcast agents, the delivery loop."""
    from streams.worker import run_worker

    try:
        settings = Settings.from_env()
        require_secrets(settings, api=False)
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from exc
    run_worker(settings, loglevel)


@click.command()
def api() -> None:
    """Run the HTTP API on NUDGE_HTTP_PORT (https with NUDGE_TLS_CERT / NUDGE_TLS_KEY)."""
    from streams.http.server import serve
    from streams.log_format import configure

    try:
        settings = Settings.from_env()
        require_secrets(settings, api=True)
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from exc
    configure(settings.log_format)
    asyncio.run(serve(settings))


@click.command()
@click.option(
    "--adopt-public", is_flag=True,
    help="First move an older Nudge's tables from schema public into NUDGE_APP_ID's schema.",
)
def migrate(adopt_public: bool) -> None:
    """Apply the database migrations to NUDGE_APP_ID's schema in NUDGE_DATABASE_URL."""
    from streams import migrations
    from streams.database import schema_name

    settings = Settings.from_env()
    if adopt_public:
        try:
            moved = asyncio.run(migrations.adopt_public(settings.database_url, settings.app_id))
        except migrations.MigrationError as exc:
            raise click.ClickException(str(exc)) from exc
        click.echo(f"moved into schema {schema_name(settings.app_id)}: " + ", ".join(moved))
    applied = asyncio.run(migrations.apply_migrations(settings.database_url, settings.app_id))
    click.echo("applied: " + (", ".join(applied) if applied else "nothing new"))


@click.command()
@click.option("--log-dir", type=click.Path(path_type=Path), default=Path("var/log"), show_default=True)
@click.option("--tls", is_flag=True, help="Serve the API over https with a local certificate (made once).")
def dev(log_dir: Path, tls: bool) -> None:
    """Bring the local stack up, run a worker and the API with the example campaigns."""
    from deploy.local import stack, stack_dir
    from deploy.local.runner import NotReady, NudgeProcesses
    from streams.cli.dev_secrets import SECRETS_FILE, dev_environment

    env = dev_environment(os.environ, stack_dir())
    if tls:
        from streams.http.tls import dev_certificates, trust_instructions

        pair = dev_certificates(stack_dir() / "tls")
        env.update(NUDGE_TLS_CERT=str(pair.cert), NUDGE_TLS_KEY=str(pair.key))
        port = env.get("NUDGE_HTTP_PORT") or str(Settings().http_port)
        env.setdefault("NUDGE_PUBLIC_URL", f"https://localhost:{port}")
    settings = Settings.from_env(env)
    started = time.monotonic()
    stack.up()
    processes = NudgeProcesses(env, log_dir)
    # Stopped by a supervisor (SIGTERM) as by Ctrl-C: the children must not outlive us.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        try:
            processes.start_api()
            processes.start_worker(timeout=120)
        except NotReady as exc:
            raise click.ClickException(f"{exc}\nLogs are in {log_dir}") from exc
        click.echo(f"\nNudge is up in {time.monotonic() - started:.1f}s. Make an email arrive:\n")
        for line in curl_lines(settings):
            click.echo(line)
        click.echo(f"\nKeys (read, send, Segment, browser) are in {stack_dir() / SECRETS_FILE}.")
        if tls:
            click.echo(f"\nThe API speaks https with a local certificate. Trust {pair.ca}:")
            for line in trust_instructions(pair.ca):
                click.echo(f"  {line}")
        click.echo(
            "\nThen read it with `nudge inbox` or at http://127.0.0.1:8025 ."
            f"\nLogs: {log_dir}/. Ctrl-C stops the worker and the API"
            " (`nudge stack down` stops the stack).\n"
        )
        while len(processes.running()) == 2:
            time.sleep(0.5)
        raise click.ClickException(f"a process exited unexpectedly; see the logs in {log_dir}")
    except KeyboardInterrupt:
        click.echo("stopping")
    finally:
        processes.stop()


def curl_lines(settings: Settings) -> list[str]:
    """The two requests that make a welcome email arrive in the inbox."""
    tls = settings.tls_cert is not None
    host = "localhost" if tls else settings.http_host
    base = f"{'https' if tls else 'http'}://{host}:{settings.http_port}/api/v1/customers/ana"
    auth = f"{settings.site_id}:{settings.api_key.get_secret_value()}"
    curl = f"curl --cacert {settings.tls_cert.parent / 'ca.pem'}" if settings.tls_cert else "curl"
    return [
        f"{curl} -u {auth} -X PUT {base} -H 'Content-Type: application/json' "
        """-d '{"email": "ana@example.com", "first_name": "Ana"}'""",
        f"{curl} -u {auth} -X POST {base}/events -H 'Content-Type: application/json' "
        """-d '{"name": "signed_up", "data": {"plan": "trial"}}'""",
    ]
