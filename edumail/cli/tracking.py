"""`edumail serve` and `edumail stats`."""

from __future__ import annotations

import errno
import json
import logging
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from edumail import clock
from edumail.cli import app
from edumail.cli.common import console, current_project, err_console
from edumail.errors import EdumailError, InputError

if TYPE_CHECKING:
    from rich.table import Table


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind."),
    port: int = typer.Option(8025, "--port", help="Port to listen on."),
) -> None:
    """Serve opens, clicks, unsubscribes and the events API."""
    import uvicorn  # noqa: PLC0415 - only `serve` needs the server

    from edumail.tracking import create_app  # noqa: PLC0415

    project = current_project()
    web = create_app(project)
    sock = _bind(host, port)
    base = project.settings.tracking.base_url
    console.print(f"edumail tracking server on http://{_show_host(host)}:{port} (Ctrl-C to stop)")
    from edumail import keys  # noqa: PLC0415

    console.print(keys.describe(project.secrets(), project.settings.tracking.secret_env))
    if base:
        console.print(f"links in mails point to {base}: put this server behind it (HTTPS)")
    else:
        console.print("[yellow]tracking.base_url is not set: mails carry no tracking links[/yellow]")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = uvicorn.Config(
        web, log_level="warning", access_log=False, proxy_headers=True, server_header=False, lifespan="on"
    )
    uvicorn.Server(config).run(sockets=[sock])


def _bind(host: str, port: int) -> socket.socket:
    """The listening socket, or a clear error (port taken, bad address)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise InputError(f"--host {host}: {exc.strerror}") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise EdumailError(f"{host}:{port} is already in use (another `edumail serve`?); pass --port N") from None
        if exc.errno == errno.EACCES:
            raise EdumailError(
                f"{host}:{port}: permission denied (ports below 1024 need root); pass --port N"
            ) from None
        raise EdumailError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.set_inheritable(True)
    return sock


def _show_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


@app.command()
def stats(
    sequence: str | None = typer.Option(None, "--sequence", help="Only this sequence."),
    since: str | None = typer.Option(None, "--since", help="From this time (ISO 8601)."),
    until: str | None = typer.Option(None, "--until", help="Until this time (ISO 8601)."),
    json_: bool = typer.Option(False, "--json", help="Print JSON."),
    csv_: bool = typer.Option(False, "--csv", help="Print CSV."),
    html: Path | None = typer.Option(None, "--html", help="Write a one-file HTML report."),
) -> None:
    """Sent, delivered, opened, clicked, unsubscribed and bounced, per step and campaign."""
    from edumail import stats as stats_module

    if json_ and csv_:
        raise InputError("--json and --csv: choose one")
    project = current_project()
    tz = project.settings.tz
    start, end = stats_module.period(since, until, tz)
    defs, problems = stats_module.definitions(project)
    for problem in problems:
        err_console.print(f"[yellow]warning:[/yellow] {problem} (this sequence is counted without its file)")
    store = project.store()
    result = stats_module.compute(store, defs, sequence=sequence, since=start, until=end)
    if html is not None:
        days = stats_module.daily(store, tz, sequence=sequence, since=start, until=end)
        shown = _period_text(start, end, tz)
        page = stats_module.html_report(
            result,
            days,
            centre=project.settings.sender.name,
            generated=clock.show(clock.now(), tz),
            period=shown,
            locale=project.settings.locale,
        )
        try:
            html.write_text(page, encoding="utf-8")
        except OSError as exc:
            raise InputError(f"--html {html}: cannot write ({exc.strerror})") from None
        err_console.print(f"wrote {html}")
    if json_:
        typer.echo(json.dumps(result, ensure_ascii=False, indent=2))
    elif csv_:
        typer.echo(stats_module.to_csv(result), nl=False)
    elif html is None:
        _print_tables(result)


def _period_text(start: Any, end: Any, tz: Any) -> str:
    if not start and not end:
        return "depuis le début"
    left = clock.show(start, tz) if start else "le début"
    right = clock.show(end, tz) if end else "maintenant"
    return f"du {left} au {right}"


def _table(title: str, first: str) -> Table:
    from rich import box
    from rich.table import Table

    from edumail import stats as stats_module

    # No inner rules; on a narrow terminal a figure with its rate ("2 66.7 %") keeps one line and the
    # headers are shortened instead, so seven columns fit 80 characters.
    table = Table(
        title=title,
        title_justify="left",
        title_style="bold",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        padding=(0, 0, 0, 1),
    )
    table.add_column(first, no_wrap=True)
    narrow = console.width < 100
    for name in stats_module.COUNTS:
        table.add_column(name, justify="right", width=9 if narrow and name in _RATE_OF else None)
    return table


_RATE_OF = {
    "opened": "open_rate",
    "clicked": "click_rate",
    "unsubscribed": "unsubscribe_rate",
    "bounced": "bounce_rate",
    "complained": "complaint_rate",
}


def _cells(entry: dict[str, Any]) -> list[str]:
    from edumail import stats as stats_module

    cells = []
    for key in stats_module.COUNTS:
        cell = str(entry[key])
        if key in _RATE_OF:
            cell += f" [dim]{stats_module.percent(entry[_RATE_OF[key]])}[/dim]"
        cells.append(cell)
    return cells


def _print_tables(result: dict[str, Any]) -> None:
    from rich.markup import escape

    from edumail import stats as stats_module

    if not result["sequences"] and not result["campaigns"]:
        console.print("nothing sent yet")
        return
    for sequence in result["sequences"]:
        table = _table(f"sequence {escape(sequence['name'])}", "step")
        for step in sequence["steps"]:
            table.add_row(escape(step["id"]), *_cells(step))
        table.add_row("[bold]all steps[/bold]", *_cells(sequence), end_section=True)
        console.print(table)
        goal = sequence.get("goal")
        if goal:
            within = f" within {goal['within']}" if goal.get("within") else ""
            console.print(
                f"  goal {goal['event']}{within}: {sequence['converted']} of {sequence['journeys']} journeys"
                f" ({stats_module.percent(sequence['conversion_rate'])})"
            )
        console.print()
    if result["campaigns"]:
        table = _table("campaigns", "campaign")
        for campaign in result["campaigns"]:
            table.add_row(escape(campaign["name"]), *_cells(campaign))
        console.print(table)
    overall = result["overall"]
    console.print(
        f"overall: {overall['sent']} sent, {overall['delivered']} delivered, {overall['complained']} complained"
        f" ({stats_module.percent(overall['complaint_rate'])};"
        f" limit {stats_module.percent(stats_module.COMPLAINT_LIMIT)})",
        soft_wrap=True,
    )
    for line in stats_module.over_limit(result):
        console.print(f"[red]warning:[/red] {escape(line)}", soft_wrap=True)
    console.print(
        "opened and clicked count people (machine opens and scanner clicks are left out); all rates are over delivered"
    )
