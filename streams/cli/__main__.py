"""`python -m streams.cli` runs the `nudge` command."""

from streams.cli import main

main()
