"""`edumail run --daemon`: the `--once` run on an APScheduler interval (wiring only).

One run at a time (max_instances=1, missed ticks coalesced); the sequences
are reloaded at each tick, so an edited YAML file takes effect without a
restart (and a broken one stops the runs, loudly, until it is fixed).
SIGTERM and SIGINT stop the scheduler after the run in flight has finished.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from edumail import clock
from edumail.errors import EdumailError
from edumail.runner import RunSummary, run_once

if TYPE_CHECKING:
    from edumail.delivery import DeliveryReport
    from edumail.project import Project


def _log(message: str) -> None:
    stamp = datetime.now(clock.UTC).strftime("%Y-%m-%d %H:%M:%S")
    print(f"{stamp} {message}", file=sys.stdout, flush=True)


def one_line(summary: RunSummary) -> str:
    """A log line for one run."""
    report = summary.engine
    parts = [
        f"entered {report.count('entered')}",
        f"queued {report.count('sent')}",
        f"skipped {report.count('skipped')}",
        f"exited {report.count('exited')}",
    ]
    if summary.webhooks is not None:
        parts.append(
            f"webhooks {summary.webhooks.delivered} ok/{summary.webhooks.retrying + summary.webhooks.failed} failed"
        )
    if summary.delivery is not None:
        parts.append(f"delivery: {delivery_text(summary.delivery)}")
    elif summary.delivery_note:
        parts.append(summary.delivery_note)
    line = "run: " + ", ".join(parts)
    for problem in summary.problems:
        line += f"\n  skipped: {problem}"
    for error in report.errors:
        line += f"\n  error: {error}"
    for alert in summary.alerts:
        line += f"\n  {alert}"
    return line


def delivery_text(report: DeliveryReport) -> str:
    """One line from delivery's report: sent, deferred, failed, and why it stopped."""
    parts = [f"{report.sent} sent"]
    for name, value in (
        ("deferred", report.deferred),
        ("failed", report.failed),
        ("bounced", report.bounced),
        ("cancelled", report.cancelled),
        ("recovered", report.recovered),
    ):
        if value:
            parts.append(f"{value} {name}")
    text = ", ".join(parts)
    if report.dry_run:
        text += f" (dry run: {report.total} due)"
    for note in (report.stopped, report.busy):
        if note:
            text += f"; {note}"
    if report.errors:
        text += "; " + "; ".join(report.errors[:3])
    return text


def serve(
    project: Project,
    *,
    interval: int,
    dry_run: bool = False,
    backfill: bool = False,
    log: Callable[[str], None] = _log,
) -> None:
    """Run every `interval` seconds until SIGTERM/SIGINT."""
    from apscheduler.schedulers import SchedulerNotRunningError
    from apscheduler.schedulers.blocking import BlockingScheduler
    from apscheduler.triggers.interval import IntervalTrigger

    scheduler = BlockingScheduler(timezone=clock.UTC)
    first = {"backfill": backfill}
    stopping = threading.Event()

    def tick() -> None:
        try:
            summary = run_once(
                project, now=clock.now(), dry_run=dry_run, backfill=first["backfill"], lock_wait=0, stop=stopping
            )
            first["backfill"] = False
            log(one_line(summary))
        except EdumailError as exc:
            log(f"run stopped: {exc}")
        except Exception as exc:  # noqa: BLE001 - a daemon logs and carries on at the next tick
            log(f"run failed unexpectedly: {exc!r}")

    def stop(signum: int, frame: Any) -> None:
        name = signal.Signals(signum).name
        if stopping.is_set():  # a second signal while the first one is handled: shutting down already
            log(f"received {name}: already stopping, waiting for the mail in flight")
            return
        log(f"received {name}: stopping after the mail in flight")
        stopping.set()
        try:
            scheduler.shutdown(wait=True)
        except SchedulerNotRunningError:  # a signal before the scheduler started: start() sees `stopping`
            pass

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    scheduler.add_job(
        tick,
        IntervalTrigger(seconds=interval),
        next_run_time=datetime.now(clock.UTC),
        max_instances=1,
        coalesce=True,
        misfire_grace_time=None,
        id="edumail-run",
    )
    log(f"edumail daemon: running every {interval}s on {project.root} (SIGTERM or Ctrl-C to stop)")
    if not stopping.is_set():
        scheduler.start()
    log("edumail daemon: stopped")
