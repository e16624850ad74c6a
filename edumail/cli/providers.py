"""`edumail providers test`, `edumail bounces fetch` and `edumail complaints import` (SPEC 18)."""

from __future__ import annotations

from pathlib import Path

import typer

from edumail import clock
from edumail.cli import app
from edumail.cli.common import console, current_project, finish
from edumail.cli.gdpr import bounces_app

providers_app = typer.Typer(help="Sending through Brevo, Mailjet, Amazon SES or Postmark.", no_args_is_help=True)
app.add_typer(providers_app, name="providers")
complaints_app = typer.Typer(help="Read spam complaints (ARF feedback reports).", no_args_is_help=True)
app.add_typer(complaints_app, name="complaints")


@providers_app.command("test")
def providers_test() -> None:
    """One authenticated call to the provider that sends nothing: says whether the API key works."""
    from rich.markup import escape

    from edumail import provider_check
    from edumail.errors import EdumailError
    from edumail.transport import SendFailure

    project = current_project()
    try:
        said = provider_check.test(project)
    except SendFailure as exc:
        raise EdumailError(f"the key does not work: {exc}") from None
    console.print(f"[green]ok:[/green] {escape(said)}", soft_wrap=True)
    url = provider_check.webhook_url(project)
    if url:
        console.print(
            f"webhook URL for the provider's console: {escape(url)} (with the variable's value)", soft_wrap=True
        )


@bounces_app.command("fetch")
def bounces_fetch() -> None:
    """Record bounces from the DSNs in the IMAP mailbox of the imap: settings (like `inbox fetch`)."""
    from rich.markup import escape

    from edumail import bounces

    project = current_project()
    report = bounces.fetch_bounces(project.store(), project.settings.imap, clock.now())
    for line in report.unmatched:
        console.print(f"[yellow]unmatched:[/yellow] {escape(line)}", soft_wrap=True)
    imap = project.settings.imap
    assert imap is not None
    console.print(f"[green]{escape(imap.host)} {escape(imap.folder)}:[/green] {report.summary()}", soft_wrap=True)


@complaints_app.command("import")
def complaints_import(path: Path = typer.Argument(..., help="An mbox file or a Maildir folder.")) -> None:
    """Record spam complaints from ARF feedback reports (RFC 5965): marketing to those contacts stops."""
    from rich.markup import escape

    from edumail import complaints

    report = complaints.import_complaints(current_project().store(), path, clock.now())
    for line in report.unreadable:
        console.print(f"[red]unreadable:[/red] {escape(line)}", soft_wrap=True)
    for line in report.unmatched:
        console.print(f"[yellow]unmatched:[/yellow] {escape(line)}", soft_wrap=True)
    console.print(f"[green]{escape(path.name)}:[/green] {report.summary()}", soft_wrap=True)
    finish(report.done_all)
