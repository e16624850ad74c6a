"""`edumail contacts ...`, `edumail event`, `edumail events import`."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from edumail import clock
from edumail.cli import app
from edumail.cli.common import console, current_project, escape, finish, parse_at, parse_pairs

contacts_app = typer.Typer(help="Import, list, show and change contacts.", no_args_is_help=True)
events_app = typer.Typer(help="Import events.", no_args_is_help=True)
app.add_typer(contacts_app, name="contacts")
app.add_typer(events_app, name="events")


@contacts_app.command("import")
def contacts_import(
    file: Path = typer.Argument(..., help="CSV file (comma or semicolon, UTF-8 or Windows-1252)."),
    consent: str | None = typer.Option(
        None, "--consent", help="Consent to record: opted_in, unknown or opted_out (a consent column's cells win)."
    ),
    basis: str | None = typer.Option(
        None, "--basis", help="Basis of an opted_in consent: opt_in, customer, professional."
    ),
    source: str | None = typer.Option(None, "--source", help="Where the consent was collected (kept as proof)."),
    tag: list[str] | None = typer.Option(None, "--tag", help="Tag every imported contact (repeatable)."),
    overwrite_stage: bool = typer.Option(
        False, "--overwrite-stage", help="Take the file's stage even where edumail changed it since the last import."
    ),
) -> None:
    """Create or update contacts from a CSV file (upsert by e-mail)."""
    from edumail import contacts_import as csv_import

    project = current_project()
    report = csv_import.import_contacts(
        project.store(),
        file,
        now=clock.now(),
        consent=consent,
        basis=basis,
        source=source,
        tags=tag or [],
        overwrite_stage=overwrite_stage,
    )
    for problem in report.problems or []:
        console.print(f"[yellow]{escape(problem)}[/yellow]", soft_wrap=True)
    console.print(f"[green]{escape(file.name)}:[/green] {report.summary()}", soft_wrap=True)
    finish(report.skipped == report.suppressed)  # a forgotten person refused is the rule working, not a fault


@contacts_app.command("list")
def contacts_list(
    tag: str | None = typer.Option(None, "--tag", help="Only contacts with this tag."),
    stage: str | None = typer.Option(None, "--stage", help="Only contacts at this stage."),
    limit: int | None = typer.Option(None, "--limit", help="At most N contacts."),
    json_: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """List contacts, optionally filtered by tag or stage."""
    from rich.table import Table

    from edumail import contacts

    project = current_project()
    found = project.store().list_contacts(tag=tag, stage=stage, limit=limit)
    if json_:
        out = [
            {
                "email": c["email"],
                "first_name": c["first_name"],
                "last_name": c["last_name"],
                "stage": c["stage"],
                "consent": c["consent"],
                "consent_basis": c["consent_basis"],
                "tags": (c["tag_list"] or "").split(",") if c["tag_list"] else [],
                "fields": json.loads(c["fields"] or "{}"),
            }
            for c in found
        ]
        typer.echo(json.dumps(out, ensure_ascii=False, indent=2, default=clock.json_default))
        return
    from rich.text import Text

    table = Table("email", "name", "stage", "consent", "tags", box=None)
    for c in found:  # Text cells: a name such as "[/bold]" is shown as written, never read as markup
        consent = c["consent"] + (f" ({c['consent_basis']})" if c["consent_basis"] else "")
        cells = (c["email"], contacts.display_name(c), c["stage"] or "", consent, c["tag_list"] or "")
        table.add_row(*(Text(str(cell)) for cell in cells))
    console.print(table)
    console.print(f"{len(found)} contact(s)")


@contacts_app.command("show")
def contacts_show(
    email: str = typer.Argument(..., help="The contact's address."),
    json_: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show a contact: profile, tags, consent history and timeline."""
    from edumail import contacts, history

    project = current_project()
    store = project.store()
    contact = contacts.require(store, email)
    told = history.story(store, contact, project.settings.tz)
    if json_:
        typer.echo(json.dumps(told, ensure_ascii=False, indent=2, default=clock.json_default))
        return
    _print_story(told, project.settings.tz)


def _print_story(told: dict, tz: object) -> None:
    from edumail import history

    person = told["contact"]
    e = escape
    console.print(f"[bold]{e(person['name'] or person['email'])}[/bold] <{e(person['email'])}>", soft_wrap=True)
    basis = f" ({person['consent_basis']})" if person["consent_basis"] else ""
    console.print(f"  stage: {e(person['stage'] or '-')}   consent: {person['consent']}{basis}", soft_wrap=True)
    console.print(f"  tags: {e(', '.join(told['tags']) or '-')}", soft_wrap=True)
    left = [name for name, state in told.get("topics", {}).items() if state == "out"]
    if left:
        console.print(f"  left topics: {e(', '.join(left))}", soft_wrap=True)
    if person["fields"]:
        console.print("  fields: " + e(", ".join(f"{k}={v}" for k, v in person["fields"].items())), soft_wrap=True)
    if person["bounced_at"]:
        console.print(f"  [red]bounced {history.when(person['bounced_at'], tz)}: no more mail[/red]")
    elif person.get("soft_bounces"):
        console.print(f"  [yellow]soft bounces since the last delivery: {person['soft_bounces']}[/yellow]")
    console.print("\n[bold]Consent history[/bold]")
    for entry in told["consent_log"]:
        basis = f" ({entry['basis']})" if entry["basis"] else ""
        proof = ", ".join(f"{k}={v}" for k, v in entry["proof"].items())
        console.print(
            f"  {history.when(entry['at'], tz)}  {entry['consent']}{basis}  via {e(entry['source'])}  "
            f"[dim]{e(proof)}[/dim]",
            soft_wrap=True,
        )
    console.print("\n[bold]Timeline[/bold]")
    if not told["timeline"]:
        console.print("  (nothing yet)")
    for item in history.shown_lines(told["timeline"]):
        console.print(f"  {history.when(item['at'], tz)}  {history.describe(item)}", soft_wrap=True, markup=False)


@contacts_app.command("tag")
def contacts_tag(
    email: str = typer.Argument(..., help="The contact's address."),
    tags: list[str] = typer.Argument(..., help="Tags to add."),
) -> None:
    """Add tags to a contact (records tag_added)."""
    from edumail import contacts

    project = current_project()
    store = project.store()
    contact = contacts.require(store, email)
    added = contacts.add_tags(store, contact["id"], tags, clock.now(), "cli")
    console.print(f"{contact['email']}: added {', '.join(added) or 'nothing (already tagged)'}")


@contacts_app.command("untag")
def contacts_untag(
    email: str = typer.Argument(..., help="The contact's address."),
    tags: list[str] = typer.Argument(..., help="Tags to remove."),
) -> None:
    """Remove tags from a contact (records tag_removed)."""
    from edumail import contacts

    project = current_project()
    store = project.store()
    contact = contacts.require(store, email)
    removed = contacts.remove_tags(store, contact["id"], tags, clock.now(), "cli")
    console.print(f"{contact['email']}: removed {', '.join(removed) or 'nothing (no such tag)'}")


@contacts_app.command("stage")
def contacts_stage(
    email: str = typer.Argument(..., help="The contact's address."),
    stage: str = typer.Argument(..., help="The new stage, e.g. prospect, lead, inscrit, client, perdu."),
) -> None:
    """Set a contact's CRM stage (records stage_changed)."""
    from edumail import contacts

    project = current_project()
    store = project.store()
    contact = contacts.require(store, email)
    changed = contacts.set_stage(store, contact["id"], stage, clock.now(), "cli")
    console.print(f"{contact['email']}: stage {stage}" + ("" if changed else " (unchanged)"))


@contacts_app.command("unbounce")
def contacts_unbounce(
    email: str = typer.Argument(..., help="The contact's address."),
    reason: str = typer.Option(..., "--reason", help="Why the bounce is lifted (logged), e.g. 'typo fixed by phone'."),
) -> None:
    """Lift a bounce suppression (hard or soft), logged with who, when and why; then `outbox retry`."""
    from edumail import bounce_charge, contacts

    project = current_project()
    store = project.store()
    contact = contacts.require(store, email)
    lifted = bounce_charge.unbounce(store, contact, reason=reason, now=clock.now())
    console.print(
        f"{escape(contact['email'])}: {lifted} lifted; `edumail outbox retry` queues its failed mails again",
        soft_wrap=True,
    )


@contacts_app.command("consent")
def contacts_consent(
    email: str = typer.Argument(..., help="The contact's address."),
    consent: str = typer.Argument(..., help="opted_in, unknown or opted_out."),
    basis: str | None = typer.Option(None, "--basis", help="Basis of opted_in: opt_in, customer, professional."),
    source: str = typer.Option(
        ..., "--source", help="How the consent was given (kept as proof), e.g. 'phone call 2026-11-20'."
    ),
) -> None:
    """Record a consent change given outside edumail, with its source."""
    from edumail import contacts

    project = current_project()
    store = project.store()
    contact = contacts.require(store, email)
    changed = contacts.set_consent(
        store,
        contact["id"],
        consent,
        basis=basis,
        now=clock.now(),
        source=source,
        proof={"command": "contacts consent"},
    )
    console.print(f"{contact['email']}: consent {consent}" + ("" if changed else " (unchanged)"))


@app.command()
def event(
    email: str = typer.Argument(..., help="The contact's address (created with consent unknown if new)."),
    name: str = typer.Argument(..., help="Event name, e.g. inscription_commencee."),
    data: list[str] | None = typer.Option(None, "--data", help="Event data as key=value (repeatable)."),
    at: str | None = typer.Option(None, "--at", help="When it happened (ISO 8601; default now)."),
) -> None:
    """Record an event for a contact."""
    from rich.markup import escape

    from edumail import contacts, trigger_data

    project = current_project()
    when = parse_at(at, project)
    values = parse_pairs(data)
    event_id = contacts.record_event_for(
        project.store(), email, name, at=when, data=values, source="cli", now=clock.now()
    )
    console.print(
        f"recorded {name} for {email.strip().lower()} at {clock.show(when, project.settings.tz)} (#{event_id})"
    )
    for warning in trigger_data.warnings_for(project, name.strip(), values):
        console.print(f"[yellow]warning:[/yellow] {escape(warning)}", soft_wrap=True)


@events_app.command("import")
def events_import(
    file: Path = typer.Argument(..., help="CSV with columns email, name, at, then data columns."),
) -> None:
    """Record events from a CSV file."""
    from edumail import contacts_import as csv_import
    from edumail import sequences, trigger_data

    project = current_project()
    loaded, _ = sequences.load(project)
    report = csv_import.import_events(
        project.store(),
        file,
        now=clock.now(),
        tz=project.settings.tz,
        warn=lambda name, data: trigger_data.warnings(loaded, name, data),
    )
    for problem in report.problems or []:
        console.print(f"[yellow]{escape(problem)}[/yellow]", soft_wrap=True)
    console.print(
        f"[green]{escape(file.name)}:[/green] {report.recorded} recorded,"
        f" {report.contacts_created} new contact(s), {report.skipped} skipped",
        soft_wrap=True,
    )
    finish(not report.skipped)
