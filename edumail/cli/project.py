"""`edumail init`, `edumail check`, `edumail demo`."""

from __future__ import annotations

from edumail.cli import app
from edumail.cli.common import not_available


@app.command()
def demo() -> None:
    """Run a 30-day simulation on a throw-away project (no settings, no network)."""
    raise not_available("demo")
