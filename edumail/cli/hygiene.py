"""`edumail secret rotate` (and `secret list`)."""

from __future__ import annotations

import os

import typer

from edumail.cli import app
from edumail.cli.common import console, current_project

secret_app = typer.Typer(help="The project's HMAC keys (signed links): rotate them, list them by fingerprint.")
app.add_typer(secret_app, name="secret")


@secret_app.command("rotate")
def secret_rotate() -> None:
    """Put a new signing key first in .edumail-secret; the old ones keep verifying links already sent."""
    from edumail import keys

    project = current_project()
    new, kept = keys.rotate(project.root)
    console.print(f"new signing key {new}; {len(kept)} older key(s) still verify: {', '.join(kept) or 'none'}")
    env = project.settings.tracking.secret_env
    if os.environ.get(env, "").strip():
        console.print(f"[yellow]{env} is set: its key still signs; unset it to sign with {new}[/yellow]")


@secret_app.command("list")
def secret_list() -> None:
    """The keys that verify links, by fingerprint (the first signs); never the keys themselves."""
    from edumail import keys

    project = current_project()
    console.print(keys.describe(project.secrets(), project.settings.tracking.secret_env))
