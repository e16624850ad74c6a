"""`edumail run --once`: check, lock, enrol and advance, POST webhooks, deliver.

The lock is a row in `locks` with an owner (host:pid) and an expiry that the
run renews as it goes: a second run waits a bounded time, then stops with a
message naming the holder; a lock left by a dead process on this host, or
expired, is taken over. The UNIQUE keys of journeys and mails stay the last
line of defence against a double send.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from edumail import alerts, lease, sequences, yamlfile
from edumail.engine import Engine, EngineReport
from edumail.errors import EdumailError, Problem

if TYPE_CHECKING:
    from edumail import webhooks
    from edumail.project import Project
    from edumail.store import Store

LOCK_NAME = "run"
LEASE = timedelta(minutes=10)
LOCK_WAIT = 30.0  # seconds a second run waits for the first to finish


class LockBusy(EdumailError):
    """Another run holds the lock."""


class _Rollback(Exception):
    pass


@contextmanager
def rolled_back(store: Store) -> Iterator[None]:
    """Run the body in one transaction and undo all of it: dry runs and plans decide for real, change nothing."""
    try:
        with store.transaction():
            yield
            raise _Rollback
    except _Rollback:
        pass


class RunLock:
    """The project-wide run lock (a lease), held for the duration of a `with` block."""

    def __init__(self, store: Store, *, wait: float = LOCK_WAIT, name: str = LOCK_NAME):
        self.lease = lease.Lease(store, name, LEASE)
        self.wait = wait
        self.waited = 0.0

    def __enter__(self) -> RunLock:
        started = time.monotonic()
        while True:
            holder = self.lease.take()
            if holder is None:
                self.waited = time.monotonic() - started
                return self
            if time.monotonic() - started >= self.wait:
                since, until = (f"{holder[k]:%Y-%m-%dT%H:%M:%S}Z" for k in ("acquired_at", "expires_at"))
                raise LockBusy(
                    f"another `edumail run` is in progress ({lease.describe(holder)}, since {since}); "
                    f"waited {self.wait:.0f}s. Try again later; if no run is alive, the lock expires at {until}"
                )
            time.sleep(0.2)

    def renew(self) -> None:
        if not self.lease.renew():
            raise LockBusy(
                "the run lock was taken over by another process (this run took longer than its lease); stopping"
            )

    def __exit__(self, *exc: object) -> None:
        self.lease.release()


@dataclass
class RunSummary:
    now: datetime
    dry_run: bool
    engine: EngineReport
    webhooks: webhooks.WebhookReport | None = None
    delivery: Any = None
    delivery_note: str = ""
    pending_webhooks: int = 0
    problems: list[str] = field(default_factory=list)  # sequence files skipped for an error, file:line: message
    alerts: list[str] = field(default_factory=list)  # the `alerts:` mails this run queued for staff

    @property
    def needs_attention(self) -> bool:
        """A person must look (SPEC 11): a sequence file skipped, a journey failed, delivery stopped, a mail failed."""
        delivery = self.delivery
        # A hard bounce is handled (the address is suppressed); any other failed mail needs a look.
        stopped = (
            delivery is not None and not self.dry_run and bool(delivery.stopped or delivery.failed > delivery.bounced)
        )
        return bool(self.problems or self.engine.errors or stopped)


def run_once(
    project: Project,
    *,
    now: datetime,
    dry_run: bool = False,
    backfill: bool = False,
    deliver: bool = True,
    lock_wait: float = LOCK_WAIT,
    stop: Any = None,
) -> RunSummary:
    """Everything a cron job does; a sequence file with an error is reported and skipped, the others run."""
    loaded, problems = sequences.load(project)
    store = project.store()
    with RunLock(store, wait=lock_wait) as lock:
        engine = Engine(project, loaded, backfill=backfill, broken=broken_names(project, problems))
        engine.heartbeat = lock.renew
        if dry_run:
            with rolled_back(store):
                report = engine.run(now)
            summary = RunSummary(now, True, report, pending_webhooks=store.pending_tasks("webhook"))
            summary.problems = [str(p) for p in problems]
        else:
            report = engine.run(now)
            summary = RunSummary(now, False, report, problems=[str(p) for p in problems])
            if store.due_tasks("webhook", now, 1):
                from edumail import webhooks  # HTTP client, TLS: loaded only when a webhook is due

                summary.webhooks = webhooks.process(store, project.secret(), now)
            summary.pending_webhooks = store.pending_tasks("webhook")
            summary.alerts = [a for a in (alerts.sequence_skipped(project, p, now) for p in summary.problems) if a]
        if deliver:
            summary.delivery, summary.delivery_note = _deliver(project, now, dry_run, stop)
            stopped = summary.delivery.stopped if not dry_run else None
            said = alerts.delivery_stopped(project, stopped, now) if stopped else None
            summary.alerts += [said] if said else []
    return summary


def broken_names(project: Project, problems: list[Problem]) -> frozenset[str]:
    """Names of the sequences whose file has an error: their journeys wait (never `sequence removed`)."""
    names = set()
    for problem in problems:
        path = project.root / problem.file
        names.add(path.stem)
        try:
            data = yamlfile.load(path, problem.file)
        except (EdumailError, OSError):
            continue
        if isinstance(data, dict) and isinstance(data.get("name"), str):
            names.add(data["name"].strip())
    return frozenset(names)


def _deliver(project: Project, now: datetime, dry_run: bool, stop: Any) -> tuple[Any, str]:
    from edumail import delivery  # the send stack: not loaded by `run --no-deliver` or `plan`

    if stop is not None:
        return delivery.deliver(project, now=now, dry_run=dry_run, stop=stop), ""
    return delivery.deliver(project, now=now, dry_run=dry_run), ""
