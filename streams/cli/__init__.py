"""The `nudge` command. Subcommands live in their own modules and load on first use."""

from __future__ import annotations

import importlib

import click

# name -> "module:attribute"; loading lazily keeps `nudge --help` fast and lets a
# subcommand's heavy imports (Faust, asyncpg) stay out of the others.
COMMANDS: dict[str, str] = {
    "stack": "streams.cli.stack:stack",
    "inbox": "streams.cli.stack:inbox",
    "dev": "streams.cli.run:dev",
    "worker": "streams.cli.run:worker",
    "deliver": "streams.cli.deliver:deliver",
    "api": "streams.cli.run:api",
    "migrate": "streams.cli.run:migrate",
    "simulate": "streams.cli.simulate:simulate",
    "campaigns": "streams.cli.campaigns:campaigns",
    "preview": "streams.cli.preview:preview",
    "messages": "streams.cli.messages:messages",
    "broadcast": "streams.cli.broadcast:broadcast",
    "segments": "streams.cli.segments:segments",
    "activity": "streams.cli.activity:activity",
    "events": "streams.cli.events:events",
    "gdpr": "streams.cli.gdpr:gdpr",
}


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = COMMANDS.get(name)
        if target is None:
            return None
        module_name, attribute = target.split(":")
        return getattr(importlib.import_module(module_name), attribute)


@click.group(cls=_LazyGroup)
def cli() -> None:
    """Nudge: a self-hosted behavioural email engine on Kafka and Faust."""


def main() -> None:
    """Entry point of the `nudge` console script."""
    cli()
