"""`edumail serve` and `edumail stats`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from edumail.cli import app
from edumail.cli.common import not_available


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind."),
    port: int = typer.Option(8025, "--port", help="Port to listen on."),
) -> None:
    """Serve opens, clicks, unsubscribes and the events API."""
    raise not_available("serve")


@app.command()
def stats(
    sequence: Optional[str] = typer.Option(None, "--sequence", help="Only this sequence."),
    since: Optional[str] = typer.Option(None, "--since", help="From this time (ISO 8601)."),
    until: Optional[str] = typer.Option(None, "--until", help="Until this time (ISO 8601)."),
    json_: bool = typer.Option(False, "--json", help="Print JSON."),
    csv_: bool = typer.Option(False, "--csv", help="Print CSV."),
    html: Optional[Path] = typer.Option(None, "--html", help="Write a one-file HTML report."),
) -> None:
    """Sent, delivered, opened, clicked, unsubscribed and bounced, per step and campaign."""
    raise not_available("stats")
