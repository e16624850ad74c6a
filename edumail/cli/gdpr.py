"""`edumail contacts export/forget`, `purge`, `bounces import`, `inbox import/fetch`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from edumail import clock
from edumail.cli import app
from edumail.cli.common import console, current_project, err_console, finish
from edumail.cli.contacts import contacts_app
from edumail.errors import EdumailError

bounces_app = typer.Typer(help="Read delivery status notifications (bounces).", no_args_is_help=True)
inbox_app = typer.Typer(help="Record replies from a mailbox.", no_args_is_help=True)
app.add_typer(bounces_app, name="bounces")
app.add_typer(inbox_app, name="inbox")


@contacts_app.command("export")
def contacts_export(email: str = typer.Argument(..., help="The contact's address.")) -> None:
    """Print everything stored about one person as JSON (right of access)."""
    from edumail import gdpr

    data = gdpr.export(current_project().store(), email, clock.now())
    typer.echo(json.dumps(data, ensure_ascii=False, indent=2, default=clock.json_default))


@contacts_app.command("forget")
def contacts_forget(
    email: str = typer.Argument(..., help="The contact's address."),
    yes: bool = typer.Option(False, "--yes", help="Do not ask for confirmation."),
) -> None:
    """Erase a person's data (database, its WAL, outbox files), keeping only a hash on the suppression list."""
    from rich.markup import escape

    from edumail import contacts, erasure, gdpr

    project = current_project()
    store = project.store()
    now = clock.now()
    address = email.strip().lower()
    if address and contacts.is_forgotten(store, address):
        # Forgotten already: finish what an interrupted erasure may have left (files, WAL), then say so.
        _report_clean_up(erasure.clean_up(project, [address], []))
    gdpr.find_contact(store, email)  # fails early and clearly for an unknown or forgotten address
    if not yes and not typer.confirm(
        f"Erase every personal data of {email.strip()}? This cannot be undone", default=False
    ):
        raise EdumailError("nothing erased (add --yes to skip this question)")
    done = gdpr.forget(store, email, now)
    cleaned = erasure.clean_up(project, [done.address], done.message_ids)
    console.print(
        f"[green]forgotten:[/green] {escape(address)} ({done.summary()}; {cleaned.summary()});"
        " its address is kept only as a salted hash on the suppression list",
        soft_wrap=True,
    )
    finish(_report_clean_up(cleaned))


def _report_clean_up(cleaned: Any) -> bool:
    """Say what an erasure could not remove, and the operator's files that name the person; True when edumail's
    own files hold nothing of them any more."""
    from rich.markup import escape

    for stray in cleaned.strays:
        err_console.print(f"[yellow]warning:[/yellow] {escape(stray)}", soft_wrap=True)
    for problem in cleaned.problems:
        err_console.print(f"[red]erasure not complete:[/red] {escape(problem)}", soft_wrap=True)
    return not cleaned.problems


@app.command()
def purge(
    dry_run: bool = typer.Option(False, "--dry-run", help="List who would be anonymised; change nothing."),
) -> None:
    """Anonymise prospects with no sign of life for 3 years (CNIL)."""
    from rich.markup import escape

    from edumail import gdpr

    project = current_project()
    report = gdpr.purge(project.store(), clock.now(), dry_run=dry_run)
    tz = project.settings.tz
    verb = "would anonymise" if dry_run else "anonymised"
    for row in report.candidates:
        last = clock.show(row["last_sign"], tz)
        what = "last sign of life" if row["last_inbound_at"] else "created"
        console.print(
            f"{verb}: {escape(row['email'])} (stage {row['stage'] or '-'}, {row['consent']}; {what} {last})",
            soft_wrap=True,
        )
    for row, why in report.kept:
        console.print(f"[yellow]kept:[/yellow] {escape(row['email'])} ({escape(why)})", soft_wrap=True)
    done = "to anonymise (dry run: nothing changed)" if dry_run else "anonymised"
    console.print(f"[green]purge:[/green] {len(report.candidates)} prospect(s) {done}", soft_wrap=True)
    if report.erasures:
        from edumail import erasure

        addresses = [e.address for e in report.erasures]
        message_ids = [m for e in report.erasures for m in e.message_ids]
        finish(_report_clean_up(erasure.clean_up(project, addresses, message_ids)))


@bounces_app.command("import")
def bounces_import(path: Path = typer.Argument(..., help="An mbox file or a Maildir folder.")) -> None:
    """Record bounces from delivery status notifications."""
    from rich.markup import escape

    from edumail import bounces

    report = bounces.import_bounces(current_project().store(), path, clock.now())
    for line in report.unmatched:
        console.print(f"[yellow]unmatched:[/yellow] {escape(line)}", soft_wrap=True)
    for line in report.policy:
        console.print(
            f"[yellow]policy (address kept, check your sending setup):[/yellow] {escape(line)}", soft_wrap=True
        )
    for line in report.staff:
        console.print(
            f"[yellow]staff mail (no contact charged; check the notify/alerts address):[/yellow] {escape(line)}",
            soft_wrap=True,
        )
    console.print(f"[green]{escape(path.name)}:[/green] {report.summary()}", soft_wrap=True)
    finish(not report.unmatched)


@inbox_app.command("import")
def inbox_import(path: Path = typer.Argument(..., help="An mbox file or a Maildir folder.")) -> None:
    """Record replies to sent mails, and unsubscribes sent by mail, from a mailbox file or folder."""
    from rich.markup import escape

    from edumail import replies

    project = current_project()
    report = replies.import_replies(project.store(), path, clock.now(), _keys(project))
    console.print(f"[green]{escape(path.name)}:[/green] {report.summary()}", soft_wrap=True)


@inbox_app.command("fetch")
def inbox_fetch() -> None:
    """Record replies to sent mails, and unsubscribes sent by mail, from the IMAP mailbox in settings."""
    from rich.markup import escape

    from edumail import replies

    project = current_project()
    report = replies.fetch_replies(project.store(), project.settings.imap, clock.now(), _keys(project))
    imap = project.settings.imap
    assert imap is not None
    console.print(f"[green]{escape(imap.host)} {escape(imap.folder)}:[/green] {report.summary()}", soft_wrap=True)


def _keys(project: Any) -> list[bytes]:
    """The keys that verify a mailto: unsubscribe's token; none (replies only) when the project has no key."""
    try:
        return list(project.secrets())
    except EdumailError:
        return []
