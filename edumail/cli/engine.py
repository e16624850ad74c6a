"""`edumail run` and `edumail plan`."""

from __future__ import annotations

from typing import Optional

import typer

from edumail.cli import app
from edumail.cli.common import not_available


@app.command()
def run(
    once: bool = typer.Option(False, "--once", help="Enrol, advance and deliver what is due, then exit (for cron)."),
    daemon: bool = typer.Option(False, "--daemon", help="Keep running on an interval until SIGTERM."),
    interval: int = typer.Option(60, "--interval", help="Seconds between runs with --daemon."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Decide and report, send nothing, change nothing."),
    backfill: bool = typer.Option(False, "--backfill", help="Also enrol from events recorded before a sequence existed."),
) -> None:
    """Run the sequences: enrol contacts, advance journeys, deliver due mail."""
    raise not_available("run")


@app.command()
def plan(
    days: int = typer.Option(7, "--days", help="How many days ahead."),
    sequence: Optional[str] = typer.Option(None, "--sequence", help="Only this sequence."),
    json_: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Forecast what will be sent to whom and when, sending nothing."""
    raise not_available("plan")
