"""`edumail preview`: render a template exactly as it would be sent, or serve them all with live reload."""

from __future__ import annotations

import tempfile
import webbrowser
from pathlib import Path

import typer

from edumail.cli import app
from edumail.cli.common import current_project, err_console, parse_pairs
from edumail.errors import InputError


@app.command()
def preview(
    template: str | None = typer.Argument(None, help="Template name (templates/NAME.html)."),
    contact: str | None = typer.Option(None, "--contact", help="Render for this contact (default: a sample)."),
    event_data: list[str] | None = typer.Option(None, "--event-data", help="Event data as key=value (repeatable)."),
    content: Path | None = typer.Option(None, "--content", help="A Markdown letter, shown as `send --content` does."),
    out: Path | None = typer.Option(None, "--out", help="Write the HTML to this file."),
    text: bool = typer.Option(False, "--text", help="Print the text part instead of the HTML."),
    open_: bool = typer.Option(False, "--open", help="Open the result in the browser."),
    serve: bool = typer.Option(False, "--serve", help="Serve every template with live reload."),
    port: int = typer.Option(8026, "--port", help="Port for --serve (127.0.0.1)."),
) -> None:
    """Render a template exactly as it would be sent."""
    from edumail import mdcontent
    from edumail import preview as core
    from edumail.render import TemplateLibrary

    project = current_project()
    if serve:
        if template or out or text or event_data or content:
            raise InputError("--serve shows every template: give no TEMPLATE, --event-data, --out or --text with it")
        url = f"http://127.0.0.1:{port}/"
        err_console.print(f"Serving previews of {project.templates_dir} on {url} (Ctrl+C to stop)")
        if open_:
            webbrowser.open(url)
        core.serve(project, port=port, contact_email=contact)
        return
    if not template:
        raise InputError("give a template name (templates/NAME.html), or --serve to see them all")
    library = TemplateLibrary(project.templates_dir, project.settings)
    rendered = core.preview(
        project,
        library,
        template,
        contact=core.preview_contact(project, contact),
        event_data=parse_pairs(event_data, "--event-data"),
        content=mdcontent.render_file(content) if content is not None else None,
    )
    err_console.print(f"Subject: {rendered.subject}", markup=False)
    if rendered.preheader:
        err_console.print(f"Preheader: {rendered.preheader}", markup=False)
    for path in rendered.attachments:
        err_console.print(f"Attachment: files/{path}", markup=False)
    target = out
    if target is None and open_:
        handle = tempfile.NamedTemporaryFile("w", suffix=f"-{template}.html", delete=False, encoding="utf-8")
        handle.close()
        target = Path(handle.name)
    if target is not None:
        try:
            target.write_text(rendered.html, encoding="utf-8")
        except OSError as exc:
            raise InputError(f"cannot write {target}: {exc.strerror}") from None
        err_console.print(f"Wrote {target}", markup=False)
        if open_:
            webbrowser.open(target.resolve().as_uri())
    if text:
        typer.echo(rendered.text, nl=False)
    elif target is None:
        typer.echo(rendered.html)
