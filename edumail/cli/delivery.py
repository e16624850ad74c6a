"""`edumail send` and `edumail outbox`."""

from __future__ import annotations

from typing import Optional

import typer

from edumail.cli import app
from edumail.cli.common import not_available

outbox_app = typer.Typer(help="List and retry queued or failed mail.", invoke_without_command=True, no_args_is_help=False)
app.add_typer(outbox_app, name="outbox")


@app.command()
def send(
    template: str = typer.Argument(..., help="Template name (templates/NAME.html)."),
    tag: Optional[list[str]] = typer.Option(None, "--tag", help="Only contacts with this tag (repeatable)."),
    stage: Optional[str] = typer.Option(None, "--stage", help="Only contacts at this stage."),
    where: Optional[list[str]] = typer.Option(None, "--where", help="Only contacts whose field equals a value: field=value."),
    at: Optional[str] = typer.Option(None, "--at", help="Schedule for this time (ISO 8601) instead of now."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show who would receive it; send nothing."),
    limit: Optional[int] = typer.Option(None, "--limit", help="At most N contacts."),
    name: Optional[str] = typer.Option(None, "--name", help="Campaign name (default: template and date)."),
) -> None:
    """Send a one-off marketing campaign to matching contacts with consent."""
    raise not_available("send")


@outbox_app.callback()
def outbox(
    ctx: typer.Context,
    failed: bool = typer.Option(False, "--failed", help="Only failed mails."),
) -> None:
    """List what is queued or failed, and why."""
    if ctx.invoked_subcommand is None:
        raise not_available("outbox")


@outbox_app.command("retry")
def outbox_retry() -> None:
    """Re-queue failed mails."""
    raise not_available("outbox retry")
