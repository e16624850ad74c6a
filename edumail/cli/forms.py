"""`edumail forms ...`: the public signup forms served by `edumail serve`."""

from __future__ import annotations

import typer

from edumail.cli import app
from edumail.cli.common import console, current_project
from edumail.errors import InputError

forms_app = typer.Typer(help="Public signup forms (forms/NAME.yaml).", no_args_is_help=True)
app.add_typer(forms_app, name="forms")


@forms_app.command("snippet")
def snippet(name: str = typer.Argument(..., help="The form's name (forms/NAME.yaml).")) -> None:
    """Print the HTML to paste into another site (it posts to `edumail serve`)."""
    from edumail import form_pages, forms

    project = current_project()
    form = forms.load_one(project, name)
    base = project.settings.tracking.base_url
    if not base:
        raise InputError(
            "set tracking.base_url in edumail.yaml (the https address where `edumail serve` answers): "
            "the form posts there"
        )
    typer.echo(form_pages.snippet(form, f"{base}/f/{form.name}", project.settings.sender.name), nl=False)


@forms_app.command("list")
def list_forms() -> None:
    """List the forms and where each one is served."""
    from edumail import forms

    project = current_project()
    base = project.settings.tracking.base_url or "(tracking.base_url)"
    names = forms.files(project)
    if not names:
        console.print("No form: create forms/NAME.yaml (see README, Forms).", soft_wrap=True)
        return
    for name in names:
        console.print(f"{name}  {base}/f/{name}", soft_wrap=True)
