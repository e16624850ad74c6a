"""`edumail run` and `edumail plan`."""

from __future__ import annotations

import json
from collections import Counter

import typer

from edumail import clock
from edumail.cli import app
from edumail.cli.common import console, current_project
from edumail.errors import InputError


@app.command()
def run(
    once: bool = typer.Option(False, "--once", help="Enrol, advance and deliver what is due, then exit (for cron)."),
    daemon: bool = typer.Option(False, "--daemon", help="Keep running on an interval until SIGTERM."),
    interval: int = typer.Option(60, "--interval", help="Seconds between runs with --daemon."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Decide and report, send nothing, change nothing."),
    backfill: bool = typer.Option(
        False, "--backfill", help="Also enrol from events recorded before a sequence existed."
    ),
) -> None:
    """Run the sequences: enrol contacts, advance journeys, deliver due mail."""
    from edumail import daemon as daemon_module
    from edumail import runner

    if once == daemon:
        raise InputError("choose one: `edumail run --once` (for cron) or `edumail run --daemon [--interval 60]`")
    if interval < 1:
        raise InputError("--interval: expected a number of seconds, 1 or more")
    project = current_project()
    if daemon:
        daemon_module.serve(project, interval=interval, dry_run=dry_run, backfill=backfill)
        return
    summary = runner.run_once(project, now=clock.now(), dry_run=dry_run, backfill=backfill)
    _print_run(summary, project.settings.tz)
    if summary.needs_attention:
        raise typer.Exit(1)


def _print_run(summary, tz) -> None:  # type: ignore[no-untyped-def]
    from edumail.cli.common import escape

    report = summary.engine
    console.print(f"edumail run at {clock.show(summary.now, tz)} ({tz.key})")
    if summary.dry_run:
        console.print("[yellow]dry run: nothing was changed or sent; this is what the run would do[/yellow]")
    rows = report.by_sequence()
    if rows:
        console.print(_run_table(rows))
    else:
        console.print("Nothing was due.")
    reasons = report.skip_reasons()
    if reasons:
        console.print("Skipped:")
        for reason, count in reasons.most_common(15):
            console.print(f"  {count} × {reason}", markup=False)
        if len(reasons) > 15:
            console.print(f"  ... and {len(reasons) - 15} other reasons (see `edumail contacts show EMAIL`)")
    for note in report.notes:
        console.print(f"[yellow]note:[/yellow] {escape(note)}", soft_wrap=True)
    hooks = summary.webhooks
    if hooks is not None and (hooks.delivered or hooks.retrying or hooks.failed):
        console.print(f"Webhooks: {hooks.delivered} delivered, {hooks.retrying} to retry, {hooks.failed} given up")
        for error in hooks.errors[:10]:
            console.print(f"  [yellow]{error}[/yellow]")
    elif summary.pending_webhooks:
        console.print(f"Webhooks: {summary.pending_webhooks} waiting")
    if summary.delivery is not None:
        from edumail.daemon import delivery_text

        console.print(f"Delivery: {delivery_text(summary.delivery)}", markup=False)
    elif summary.delivery_note:
        console.print(f"Delivery: {summary.delivery_note}")
    for problem in summary.problems:
        console.print(f"[red]skipped:[/red] {escape(problem)}")
    if summary.problems:
        console.print("The sequences above were skipped (their journeys wait); fix them, `edumail check` says all.")
    for error in report.errors:
        console.print(f"[red]error:[/red] {escape(error)}")
    for alert in summary.alerts:
        console.print(f"[yellow]{escape(alert)}[/yellow]", soft_wrap=True)


def _run_table(rows):  # type: ignore[no-untyped-def]
    from rich.table import Table

    table = Table(show_edge=False, pad_edge=False)
    columns = ("entered", "sent", "done", "skipped", "exited", "completed")
    table.add_column("sequence")
    for column in columns:
        table.add_column("queued" if column == "sent" else column, justify="right")
    for name in sorted(rows):
        table.add_row(name, *(str(rows[name].get(c, 0) or "") for c in columns))
    return table


@app.command()
def plan(
    days: int = typer.Option(7, "--days", help="How many days ahead."),
    sequence: str | None = typer.Option(None, "--sequence", help="Only this sequence."),
    json_: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Forecast what will be sent to whom and when, sending nothing."""
    from edumail import plan as plan_module

    if days < 0:
        raise InputError("--days: expected 0 or more")
    project = current_project()
    result = plan_module.forecast(project, now=clock.now(), days=days, sequence=sequence)
    if json_:
        typer.echo(json.dumps(result.as_json(), ensure_ascii=False, indent=2))
    else:
        _print_plan(result, project.settings.tz)
    if result.problems:
        raise typer.Exit(1)


def _print_plan(result, tz) -> None:  # type: ignore[no-untyped-def]
    from rich.markup import escape

    mails = result.mails
    marketing = sum(1 for d in mails if d.purpose == "marketing")
    console.print(
        f"Plan from {clock.show(result.start, tz)} to {clock.show(result.until, tz)} ({tz.key}): "
        f"{_n(len(mails), 'mail')} to {_n(len({d.contact_id for d in mails}), 'contact')} "
        f"({marketing} marketing, {len(mails) - marketing} service)",
        soft_wrap=True,
    )
    shown = [d for d in result.decisions if d.outcome in ("sent", "done", "skipped", "exited", "failed") and d.step]
    shown += [d for d in result.decisions if d.outcome == "exited" and not d.step]
    if not shown:
        console.print("Nothing will happen in that time, given what is known now.")
    rows = sorted(shown, key=lambda d: (d.at, d.sequence, d.email))
    width_email = max((len(d.email) for d in rows), default=0)
    width_step = max(
        (len(f"{d.sequence}/{d.step}") + (len(d.session) + 3 if d.session else 0) for d in rows), default=0
    )
    day = None
    conditional = False
    for d in rows:
        local = d.at.astimezone(tz)
        if local.date() != day:
            day = local.date()
            console.print(f"[bold]{local:%a %Y-%m-%d}[/bold]")
        mark = " *" if d.conditional else ""
        conditional = conditional or d.conditional
        where = f"{d.sequence}/{d.step}" + (f" [{d.session}]" if d.session else "")
        console.print(
            f"  {local:%H:%M}  {escape(d.email):<{width_email}}  {escape(where):<{width_step}}  {_what(d)}{mark}",
            soft_wrap=True,
        )
    if conditional:
        console.print("* depends on opens or clicks: shown as things stand now")
    by_template = Counter(d.template for d in mails)
    if by_template:
        shown_counts = ", ".join(f"{name} {count}" for name, count in by_template.most_common())
        console.print(f"By template: {shown_counts}", soft_wrap=True)
    for note in result.notes:
        console.print(f"[yellow]note:[/yellow] {escape(note)}", soft_wrap=True)
    for problem in result.problems:
        console.print(f"[red]skipped:[/red] {escape(problem)}", soft_wrap=True)
    if result.problems:
        console.print(
            "The sequences above were left out of the plan (their journeys wait); `edumail check` says all.",
            soft_wrap=True,
        )


def _what(d) -> str:  # type: ignore[no-untyped-def]
    from rich.markup import escape

    if d.outcome == "sent":
        extra = f" + {', '.join(d.actions)}" if d.actions else ""
        return f"send {d.template} ({d.purpose}){extra}"
    if d.outcome == "done":
        return ", ".join(d.actions) or "done"
    if d.outcome == "exited":
        return f"[yellow]exits: {escape(d.reason)}[/yellow]"
    return f"[yellow]skipped: {escape(d.reason)}[/yellow]"


def _n(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"
