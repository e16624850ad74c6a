"""`edumail contacts export/forget`, `purge`, `bounces import`, `inbox import/fetch`."""

from __future__ import annotations

from pathlib import Path

import typer

from edumail.cli import app
from edumail.cli.common import not_available
from edumail.cli.contacts import contacts_app

bounces_app = typer.Typer(help="Read delivery status notifications (bounces).", no_args_is_help=True)
inbox_app = typer.Typer(help="Record replies from a mailbox.", no_args_is_help=True)
app.add_typer(bounces_app, name="bounces")
app.add_typer(inbox_app, name="inbox")


@contacts_app.command("export")
def contacts_export(email: str = typer.Argument(..., help="The contact's address.")) -> None:
    """Print everything stored about one person as JSON (right of access)."""
    raise not_available("contacts export")


@contacts_app.command("forget")
def contacts_forget(
    email: str = typer.Argument(..., help="The contact's address."),
    yes: bool = typer.Option(False, "--yes", help="Do not ask for confirmation."),
) -> None:
    """Erase a person's data, keeping only a hash on the suppression list."""
    raise not_available("contacts forget")


@app.command()
def purge(dry_run: bool = typer.Option(False, "--dry-run", help="List who would be anonymised; change nothing.")) -> None:
    """Anonymise prospects with no sign of life for 3 years (CNIL)."""
    raise not_available("purge")


@bounces_app.command("import")
def bounces_import(path: Path = typer.Argument(..., help="An mbox file or a Maildir folder.")) -> None:
    """Record bounces from delivery status notifications."""
    raise not_available("bounces import")


@inbox_app.command("import")
def inbox_import(path: Path = typer.Argument(..., help="An mbox file or a Maildir folder.")) -> None:
    """Record replies to sent mails from a mailbox file or folder."""
    raise not_available("inbox import")


@inbox_app.command("fetch")
def inbox_fetch() -> None:
    """Record replies to sent mails from the IMAP mailbox in settings."""
    raise not_available("inbox fetch")
