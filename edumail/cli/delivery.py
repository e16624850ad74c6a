"""`edumail send` and `edumail outbox`."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from edumail import clock
from edumail.cli import app
from edumail.cli.common import (
    INTERRUPTED,
    console,
    current_project,
    err_console,
    escape,
    finish,
    interruptible,
    parse_at,
    parse_pairs,
)

if TYPE_CHECKING:
    from edumail import campaigns
    from edumail.delivery import DeliveryReport


outbox_app = typer.Typer(
    help="List and retry queued or failed mail.", invoke_without_command=True, no_args_is_help=False
)
app.add_typer(outbox_app, name="outbox")


@app.command()
def send(
    template: str = typer.Argument(..., help="Template name (templates/NAME.html)."),
    tag: list[str] | None = typer.Option(None, "--tag", help="Only contacts with this tag (repeatable: all of them)."),
    stage: list[str] | None = typer.Option(
        None, "--stage", help="Only contacts at this stage (repeatable: one of them)."
    ),
    where: list[str] | None = typer.Option(
        None, "--where", help="Only contacts whose field equals a value: field=value."
    ),
    segment: str | None = typer.Option(None, "--segment", help="Only contacts of segments/NAME.yaml."),
    topic: str | None = typer.Option(None, "--topic", help="A topic of edumail.yaml: who left it is skipped."),
    data: list[str] | None = typer.Option(
        None, "--data", help="Campaign data as key=value, read by the template as event.key (repeatable)."
    ),
    content: Path | None = typer.Option(
        None, "--content", help="A Markdown file rendered into the template's content (the monthly letter)."
    ),
    at: str | None = typer.Option(None, "--at", help="Schedule for this time (ISO 8601) instead of now."),
    until: str | None = typer.Option(None, "--until", help="Drop what is not sent by this time (ISO 8601)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show who would receive it; send nothing."),
    limit: int | None = typer.Option(None, "--limit", help="At most N contacts."),
    name: str | None = typer.Option(None, "--name", help="Campaign name (default: template and date)."),
) -> None:
    """Send a one-off marketing campaign to matching contacts with consent."""
    from edumail import campaign_spec, campaigns

    project = current_project()
    now = clock.now()
    when = parse_at(at, project) if at else now
    spec = campaign_spec.build(
        project,
        stages=stage,
        tags=tag,
        where=parse_pairs(where, "--where"),
        segment=segment,
        data=parse_pairs(data, "--data"),
        content_file=content,
        until=parse_at(until, project, "--until") if until else None,
        topic=topic,
    )
    plan = campaigns.create_campaign(
        project, template, now=now, at=when, spec=spec, name=name, limit=limit, dry_run=dry_run
    )
    _print_plan(plan, project.settings.tz)
    if dry_run:
        return
    if plan.scheduled:
        console.print(
            f"Scheduled for {clock.show(plan.at, project.settings.tz)}: the next `edumail run` after that "
            "time sends it.",
            soft_wrap=True,
        )
        return
    _send_now(project, plan, now)


def _send_now(project: Any, plan: campaigns.CampaignPlan, now: Any) -> None:
    """Deliver what is due, say what happened; exit 1 when a person must look, 130 after Ctrl-C."""
    with interruptible() as interruption:
        report = _deliver_with_progress(project, now, interruption.stop)
    if report.busy:  # joined: the mails are queued once, the process delivering sends them (exit 0)
        _print_busy(project, plan, report.busy)
        return
    _print_report(report)
    _print_window_wait(project, plan)
    if report.stopped:
        from edumail import alerts

        said = alerts.delivery_stopped(project, report.stopped, now)
        if said:
            err_console.print(escape(said), soft_wrap=True)
    if interruption.signalled:
        _print_interrupted(project, plan, report)
        raise typer.Exit(INTERRUPTED)
    finish(not report.failed and not report.stopped)


def _campaign_queued(project: Any, plan: campaigns.CampaignPlan) -> int:
    return project.store().campaign_waiting(plan.campaign_id)[0] if plan.campaign_id is not None else 0


def _print_busy(project: Any, plan: campaigns.CampaignPlan, holder: str) -> None:
    """Two `send` of one campaign at once (or a daemon delivering): the mails are queued once, one process sends."""
    waiting = _campaign_queued(project, plan)
    err_console.print(
        f"Campaign {escape(plan.name)} is being sent by another edumail process ({holder}): its {waiting} queued "
        f"mail{'s' if waiting != 1 else ''} go out from there (or with the next `edumail run`), once each; "
        "`edumail outbox` shows what is left.",
        soft_wrap=True,
    )


def _print_interrupted(project: Any, plan: campaigns.CampaignPlan, report: DeliveryReport) -> None:
    waiting = _campaign_queued(project, plan)
    err_console.print(
        f"Interrupted: {report.sent} sent, {waiting} still queued (campaign {escape(plan.name)}). "
        "The next `edumail run` sends the rest, or run the same `edumail send` command again: "
        "nobody gets the mail twice.",
        soft_wrap=True,
    )


def _print_window_wait(project: Any, plan: campaigns.CampaignPlan) -> None:
    """Mails held by `send_window`: say so, and when it opens (local time), instead of a bare "nothing"."""
    window = project.settings.send_window
    if window is None or plan.campaign_id is None:
        return
    waiting, first = project.store().campaign_waiting(plan.campaign_id)
    if not waiting or first is None:
        return
    tz = project.settings.tz
    local = first.astimezone(tz)
    days = "-".join((window.days[0], window.days[-1])) if len(window.days) > 1 else window.days[0]
    console.print(
        f"{waiting} mail{' waits' if waiting == 1 else 's wait'} for the send window ({days} {window.hours}): "
        f"it opens on {local:%a %Y-%m-%d} at {local:%H:%M} ({tz.key}); the next `edumail run` after that sends "
        f"{'it' if waiting == 1 else 'them'}.",
        soft_wrap=True,
    )


def _print_plan(plan: campaigns.CampaignPlan, tz: object) -> None:
    verb = "would queue" if plan.dry_run else "queued"
    line = f"Campaign [bold]{plan.name}[/bold] ({plan.template}): {plan.matched} matching, {plan.queued} {verb}"
    if plan.already:
        line += f", {plan.already} already queued by an earlier run"
    console.print(line + ".", soft_wrap=True)
    if plan.skipped:
        reasons = ", ".join(f"{n} {why}" for why, n in sorted(plan.skipped.items()))
        console.print(f"Skipped: {reasons}.", soft_wrap=True)
    if plan.dry_run:
        shown = ", ".join(plan.recipients[:10])
        more = f" and {plan.queued - 10} more" if plan.queued > 10 else ""
        if plan.queued:
            console.print(f"Dry run, nothing queued or sent. Recipients: {shown}{more}.", soft_wrap=True)
        else:
            console.print("Dry run, nothing queued or sent.", soft_wrap=True)


def _deliver_with_progress(project: object, now: object, stop: Any) -> DeliveryReport:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from edumail import delivery

    columns = [
        TextColumn("Sending"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]:>7} mails/s"),
        TextColumn("[red]{task.fields[failed]} failed[/red]"),
        TimeElapsedColumn(),
    ]
    started = time.monotonic()
    with Progress(*columns, console=err_console.real, transient=True) as bar:
        task = bar.add_task("send", total=None, rate="-", failed=0)

        def progress(report: DeliveryReport) -> None:
            elapsed = max(time.monotonic() - started, 1e-6)
            bar.update(
                task,
                total=report.total,
                completed=report.done,
                rate=f"{report.done / elapsed:.0f}",
                failed=report.failed,
            )

        return delivery.deliver(project, now=now, progress=progress, stop=stop)  # type: ignore[arg-type]


def _print_report(report: DeliveryReport) -> None:
    if report.total == 0:
        console.print("Nothing to send now.", soft_wrap=True)
        return
    rate = report.done / report.seconds if report.seconds else 0.0
    parts = [f"{report.sent} sent"]
    if report.failed:
        parts.append(f"{report.failed} failed" + (f" ({report.bounced} bounced)" if report.bounced else ""))
    if report.deferred:
        parts.append(f"{report.deferred} deferred (retried later by `edumail run`)")
    if report.cancelled:
        parts.append(f"{report.cancelled} cancelled (consent changed)")
    if report.recovered:
        parts.append(f"{report.recovered} re-sent after an interrupted run")
    console.print(
        f"{', '.join(parts)} in {report.seconds:.1f}s ({rate:.0f} mails/s) via {report.transport}.", soft_wrap=True
    )
    for reason in report.errors[:5]:
        err_console.print(f"  [yellow]-[/yellow] {reason}", soft_wrap=True)
    if report.stopped:
        err_console.print(f"[red]error:[/red] {escape(report.stopped)}", soft_wrap=True)
    if report.failed and report.failed > report.bounced:
        err_console.print(
            "See `edumail outbox --failed`; once fixed, `edumail outbox retry` queues them again.", soft_wrap=True
        )


@outbox_app.callback()
def outbox(
    ctx: typer.Context,
    failed: bool = typer.Option(False, "--failed", help="Only failed mails."),
) -> None:
    """List what is queued or failed, and why."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from edumail import attachments

    if ctx.invoked_subcommand is not None:
        return
    project = current_project()
    store = project.store()
    tz = project.settings.tz
    now_db = clock.now()
    counts = store.outbox_counts()
    summary = ", ".join(
        f"{counts[s]} {s}" for s in ("queued", "sending", "failed", "sent", "cancelled") if counts.get(s)
    )
    console.print(f"Outbox: {summary or 'empty'}.", soft_wrap=True)
    states = ("failed",) if failed else ("queued", "sending", "failed")
    shown = 100
    rows = store.outbox_list(states, shown + 1)
    if not rows:
        console.print("Nothing failed." if failed else "Nothing queued or failed.", soft_wrap=True)
        return
    table = Table(show_edge=False, pad_edge=False)
    sizes = attachments.pending(project, rows[:shown], now_db)  # "2 files, 340 KB", when a template attaches files
    extra = ["attachments"] if sizes else []
    for column in ("id", "state", "to", "template", "from", "attempts", "next try", *extra, "why"):
        table.add_column(column, overflow="fold")
    for row in rows[:shown]:
        origin = row["campaign"] or (f"{row['sequence']}/{row['step_id']}" if row["sequence"] else "")
        due = row["not_before"]
        when = "now" if row["state"] == "queued" and due <= now_db else clock.show(due, tz)
        cells = (
            str(row["id"]),
            row["state"],
            row["email"] or "",
            row["template"],
            origin,
            str(row["attempts"]),
            when if row["state"] == "queued" else "",
            *([sizes.get(row["id"], "")] if sizes else []),
            row["last_error"] or "",
        )
        table.add_row(*(Text(cell) for cell in cells))  # an address or a server reply is never markup
    # Piped output (grep, a log file) gets full lines; a terminal gets a table that fits.
    (console if console.is_terminal else Console(width=200, highlight=False)).print(table)
    if len(rows) > shown:
        console.print(f"... and more (showing the first {shown}).", soft_wrap=True)
    if counts.get("failed"):
        console.print(
            "`edumail outbox retry` queues the failed ones again (not those whose address bounced).", soft_wrap=True
        )


@outbox_app.command("retry")
def outbox_retry() -> None:
    """Re-queue failed mails."""
    from edumail import delivery

    project = current_project()
    result = delivery.retry_failed(project, now=clock.now())
    line = f"{result.requeued} failed mail{'s' if result.requeued != 1 else ''} queued again"
    if result.kept:
        line += "; left failed: " + ", ".join(f"{n} ({why})" for why, n in sorted(result.kept.items()))
    console.print(line + ".", soft_wrap=True)
    if result.requeued:
        console.print("`edumail run` (or the running daemon) sends them.", soft_wrap=True)
