"""`edumail init`, `edumail check`, `edumail demo`."""

from __future__ import annotations

from pathlib import Path

import typer

from edumail import checks, scaffold
from edumail.cli import app
from edumail.cli.common import console, not_available, state
from edumail.project import project_dir


@app.command()
def init(
    directory: Path | None = typer.Argument(None, help="Folder to create the project in (default: --project or here)."),
    name: str = typer.Option("Centre de formation Exemple", "--name", help="The centre's name (sender name)."),
    email: str = typer.Option("contact@centre.example", "--email", help="The sender address."),
) -> None:
    """Create a working project: settings, templates, sequences, example contacts."""
    target = (directory or project_dir(state.project_dir)).resolve()
    written = scaffold.init_project(target, name=name, email=email)
    console.print(f"[green]created project in {target}[/green]: {', '.join(written)}")
    console.print("next: edit edumail.yaml, then `edumail check` and `edumail contacts import contacts.csv.example`")


@app.command()
def check() -> None:
    """Validate settings, sequences and templates; print file:line: message for each problem."""
    problems, counts = checks.check(state.project_dir)
    for problem in problems:
        typer.echo(str(problem))
    if problems:
        console.print(f"[red]{len(problems)} problem(s)[/red]")
        raise typer.Exit(1)
    what = ", ".join(f"{n} {k}" if k != "settings" else "settings" for k, n in counts.items())
    console.print(f"[green]ok[/green]: {what}")


@app.command()
def demo() -> None:
    """Run a 30-day simulation on a throw-away project (no settings, no network)."""
    raise not_available("demo")
