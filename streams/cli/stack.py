"""`nudge stack up|down|status` (the local Kafka, PostgreSQL and inbox) and `nudge inbox`."""

from __future__ import annotations

import json
import sys

import click

from deploy.local import ServiceStatus, StackError


def _line(service: ServiceStatus) -> str:
    state = service.action or ("running" if service.running else "stopped")
    timing = f"{service.seconds:5.1f}s" if service.action else ""
    pid = f"pid {service.pid}" if service.pid else ""
    return f"{service.name:<9} {state:<16} {timing:>6}  {service.address:<45} {pid:<11} log {service.log}"


@click.group()
def stack() -> None:
    """The local development stack: Kafka, PostgreSQL and a development inbox."""


@stack.command()
@click.option(
    "--brokers", type=click.IntRange(1, 9), default=None,
    help="Kafka brokers (default NUDGE_KAFKA_BROKERS, else 1); 3 replicates like production.",
)
def up(brokers: int | None) -> None:
    """Start every service that is not running; a second call does nothing."""
    from deploy.local import stack as local

    try:
        result = local.up(on_service=lambda s: click.echo(_line(s)), brokers=brokers)
    except StackError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"stack ready in {result.seconds:.1f}s; Nudge's defaults point at it:")
    for name, value in result.env().items():
        click.echo(f"  {name}={value}")


@stack.command()
@click.option(
    "--purge", is_flag=True,
    help="Also delete what the stack and deploy/install.sh left: data, logs, the jar cache, "
    "and the system packages the installer installed.",
)
@click.option("--keep-packages", is_flag=True, help="With --purge: leave system packages installed.")
def down(purge: bool, keep_packages: bool) -> None:
    """Stop every service (data and received messages are kept, unless --purge)."""
    from deploy.local import stack as local

    try:
        if purge:
            purged = local.purge(packages=not keep_packages)
            for path in purged.paths:
                click.echo(f"removed {path}")
            for user in purged.users:
                click.echo(f"removed system user {user}")
            if purged.packages:
                click.echo("removed packages: " + " ".join(purged.packages))
            click.echo("stack purged")
            return
        result = local.down(on_service=lambda s: click.echo(_line(s)))
    except StackError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"stack down in {result.seconds:.1f}s")


@stack.command()
def status() -> None:
    """Show each service; exit code 1 if any is not running."""
    from deploy.local import stack as local

    result = local.status()
    for service in result.services:
        click.echo(_line(service))
    if not result.running:
        click.echo("some services are down; start them with `nudge stack up`", err=True)
        sys.exit(1)


@click.command()
@click.option("--limit", "-n", default=20, show_default=True, help="How many messages (0: all).")
@click.option("--to", default=None, help="Only messages to an address containing this text.")
@click.option("--json", "as_json", is_flag=True, help="Print the messages as JSON.")
@click.option("--clear", is_flag=True, help="Delete every message in the inbox.")
def inbox(limit: int, to: str | None, as_json: bool, clear: bool) -> None:
    """Show the newest messages that reached the development inbox, newest first."""
    from deploy.local import inbox as dev_inbox

    try:
        if clear:
            click.echo(f"deleted {dev_inbox.clear_remote()} messages")
            return
        messages = dev_inbox.fetch(limit, to)
    except StackError as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(json.dumps(messages, indent=2, ensure_ascii=False))
        return
    if not messages:
        click.echo(f"the inbox is empty ({dev_inbox.base_url()})")
    for message in messages:
        received = message["received"][:19].replace("T", " ")
        to_list = ", ".join(message["to"] or message["envelope_to"])
        click.echo(f"{received}  {_nudge_id(message)}  {message['from']} -> {to_list}  {message['subject']}")


def _nudge_id(message: dict) -> str:
    """Nudge's message id (the Message-ID's local part, what the console finds), else the inbox's."""
    header = (message.get("message_id") or "").strip().strip("<>")
    return header.split("@", 1)[0] if "@" in header else message["id"]
