"""`edumail preview`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from edumail.cli import app
from edumail.cli.common import not_available


@app.command()
def preview(
    template: Optional[str] = typer.Argument(None, help="Template name (templates/NAME.html)."),
    contact: Optional[str] = typer.Option(None, "--contact", help="Render for this contact (default: a sample)."),
    event_data: Optional[list[str]] = typer.Option(None, "--event-data", help="Event data as key=value (repeatable)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Write the HTML to this file."),
    text: bool = typer.Option(False, "--text", help="Print the text part instead of the HTML."),
    open_: bool = typer.Option(False, "--open", help="Open the result in the browser."),
    serve: bool = typer.Option(False, "--serve", help="Serve every template with live reload."),
    port: int = typer.Option(8026, "--port", help="Port for --serve (127.0.0.1)."),
) -> None:
    """Render a template exactly as it would be sent."""
    raise not_available("preview")
