"""`edumail init`, `edumail check`, `edumail demo`."""

from __future__ import annotations

from pathlib import Path

import typer

from edumail.cli import app
from edumail.cli.common import console, state
from edumail.errors import InputError


@app.command()
def init(
    directory: Path | None = typer.Argument(None, help="Folder to create the project in (default: --project or here)."),
    name: str = typer.Option("Centre de formation Exemple", "--name", help="The centre's name (sender name)."),
    email: str = typer.Option("contact@centre.example", "--email", help="The sender address."),
) -> None:
    """Create a working project: settings, templates, sequences, example contacts."""
    from edumail import scaffold
    from edumail.project import project_dir

    target = (directory or project_dir(state.project_dir)).resolve()
    written = scaffold.init_project(target, name=name, email=email)
    console.print(f"[green]created project in {target}[/green]: {', '.join(written)}")
    console.print("next: edit edumail.yaml, then `edumail check` and `edumail contacts import contacts.csv.example`")


@app.command()
def check() -> None:
    """Validate settings, sequences and templates; print file:line: message for each problem."""
    from rich.markup import escape

    from edumail import checks

    problems, counts = checks.check(state.project_dir)
    for warning in checks.warnings(state.project_dir):
        console.print(f"[yellow]warning:[/yellow] {escape(warning)}", soft_wrap=True)
    for note in checks.live_edits_notes(state.project_dir):
        console.print(f"[yellow]live edit:[/yellow] {escape(note)}", soft_wrap=True)
    for problem in problems:
        typer.echo(str(problem))
    if problems:
        console.print(f"[red]{len(problems)} problem(s)[/red]")
        raise typer.Exit(1)
    what = ", ".join(f"{n} {k}" if k != "settings" else "settings" for k, n in counts.items())
    console.print(f"[green]ok[/green]: {what}")


@app.command()
def demo(
    directory: Path | None = typer.Option(
        None, "--dir", help="Create the demo project here (default: a temporary folder)."
    ),
    contacts: int = typer.Option(200, "--contacts", help="How many contacts to invent."),
    days: int = typer.Option(30, "--days", help="How many days to simulate."),
    seed: int = typer.Option(2026, "--seed", help="Random seed (same seed, same story)."),
) -> None:
    """Run a 30-day simulation on a throw-away project (no settings, no network)."""
    from edumail import demo as demo_module
    from edumail import project as project_module
    from edumail import stats as stats_module
    from edumail.cli.tracking import _print_tables

    if contacts < 1 or days < 1:
        raise InputError("--contacts and --days take a number of 1 or more")
    console.print(
        f"[bold]edumail demo[/bold]: {contacts} contacts, {days} days, the real engine and the file transport"
    )
    header = (
        f"{'day':<11} {'events':>6} {'entered':>7} {'sent':>5} {'skipped':>7}"
        f" {'exited':>6} {'opened':>6} {'clicked':>7} {'unsub':>5}"
    )
    console.print(f"[dim]{header}[/dim]")
    tz = demo_module.clock.zone("Europe/Paris")

    def show_day(day: demo_module.Day) -> None:
        label = day.date.astimezone(tz).strftime("%a %d %b")
        line = (
            f"{label:<11} {sum(day.events.values()):>6} {day.entered:>7} {sum(day.sent.values()):>5}"
            f" {sum(day.skipped.values()):>7} {day.exited:>6} {day.opened:>6} {day.clicked:>7} {day.unsubscribed:>5}"
        )
        detail = ", ".join(f"{name} {count}" for name, count in day.sent.most_common(3))
        console.print(line + (f"  [dim]{detail}[/dim]" if detail else ""), soft_wrap=True)

    result = demo_module.run(
        directory.resolve() if directory else None, contact_count=contacts, days=days, seed=seed, on_day=show_day
    )
    console.print(f"\n{result.imported}", soft_wrap=True)
    for line in result.calendar:  # a session moved, one cancelled, and what the engine did about it
        console.print(f"Calendar: {line}", markup=False, soft_wrap=True)
    skipped = sum((day.skipped for day in result.days), start=demo_module.Counter())
    if skipped:
        console.print("Skipped steps, and why (every one is in `contacts show`):")
        for reason, count in skipped.most_common(6):
            console.print(f"  {count} × {reason}", markup=False)
    project = project_module.load(result.root)
    defs, _ = stats_module.definitions(project)
    console.print()
    _print_tables(stats_module.compute(project.store(), defs))
    project.close()
    root = result.root
    console.print(f"\n[bold]{result.mails} real .eml files[/bold] in {root / 'outbox'} (open one in your mail client)")
    console.print("Go further with this project:")
    for command in ("stats", "plan --days 7", "contacts list --stage inscrit", "preview --serve", "serve"):
        console.print(f"  edumail --project {root} {command}", markup=False)
