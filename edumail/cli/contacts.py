"""`edumail contacts ...`, `edumail event`, `edumail events import`."""

from __future__ import annotations

import typer

from edumail.cli import app

contacts_app = typer.Typer(help="Import, list, show and change contacts.", no_args_is_help=True)
events_app = typer.Typer(help="Import events.", no_args_is_help=True)
app.add_typer(contacts_app, name="contacts")
app.add_typer(events_app, name="events")
