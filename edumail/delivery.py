"""Draining the outbox: workers, retries, the rate limit, exactly-once bookkeeping.

A mail moves queued -> sending -> sent | failed | cancelled (or back to queued
with a later not_before after a temporary failure). Each step is its own short
transaction, so a crash never loses a mail: what a dead run left in 'sending'
goes out again on the next run with the same Message-ID. The only duplicate
possible is a mail the server accepted just before the process died, before
the 'sent' commit, and it carries the same Message-ID both times.

Workers (`smtp.concurrency` threads) each hold one transport connection, reused
for many mails, and their own store connection. One process drains at a time
(the 'delivery' lock); a run that finds another one draining leaves it alone.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from edumail import contacts, lease
from edumail import delivery_faults as faults
from edumail.compose import Composer, Skip
from edumail.delivery_failures import (  # noqa: F401 (BACKOFF... stay importable from here)
    BACKOFF,
    DEFERRALS_TO_PAUSE,
    GIVE_UP_AFTER,
    MAX_ATTEMPTS,
    POLICY_STREAK,
    REFUSALS_TO_STOP,
    FailureHandling,
)
from edumail.delivery_failures import WRITE as _WRITE
from edumail.errors import EdumailError
from edumail.project import Project
from edumail.store import Store
from edumail.transport import PERMANENT, TEMPORARY, SendFailure, Transport
from edumail.transport import make as make_transport

LOCK_TTL = timedelta(seconds=120)  # renewed while the run lasts
_RATE_META = "delivery.rate_tat"
SWITCH_INTERVAL = 0.0005  # seconds, while several workers run (see _Run.go)

Progress = Callable[["DeliveryReport"], None]


@dataclass
class DeliveryReport:
    """What a run did. `failed` includes `bounced`; `stopped` says why a run stopped early."""

    total: int = 0  # due when the run started (bounded by limit)
    sent: int = 0
    failed: int = 0
    bounced: int = 0
    deferred: int = 0
    cancelled: int = 0
    recovered: int = 0  # found in 'sending' after a crash, sent again with their Message-ID
    stopped: str | None = None
    busy: str | None = None  # another process was delivering: nothing done here
    dry_run: bool = False
    transport: str = ""
    errors: list[str] = field(default_factory=list)  # a few distinct reasons, for the summary
    seconds: float = 0.0

    @property
    def done(self) -> int:
        return self.sent + self.failed + self.deferred + self.cancelled

    @property
    def ok(self) -> bool:
        return not self.failed and not self.stopped

    def _note(self, reason: str) -> None:
        if reason not in self.errors and len(self.errors) < 10:
            self.errors.append(reason)


# --- rate limit -----------------------------------------------------------------------


class RateLimiter:
    """Spaces sends evenly (GCRA) across worker threads; the schedule persists across runs.

    Rate limiting is about the provider's wall clock, not the logical `now`.
    """

    def __init__(
        self, per_minute: int, *, start: float = 0.0, burst: int = 1, clock_fn: Callable[[], float] = time.time
    ) -> None:
        self.interval = 60.0 / per_minute if per_minute > 0 else 0.0
        self.tolerance = self.interval * max(burst - 1, 0)
        self.clock = clock_fn
        self.tat = start
        self.lock = threading.Lock()

    def reserve(self) -> float:
        """Take the next slot; returns how many seconds to wait before using it."""
        if not self.interval:
            return 0.0
        with self.lock:
            now = self.clock()
            tat = max(self.tat, now)
            self.tat = tat + self.interval
            return max(0.0, tat - self.tolerance - now)


# --- the run --------------------------------------------------------------------------


def deliver(
    project: Project,
    *,
    now: datetime,
    dry_run: bool = False,
    limit: int | None = None,
    progress: Progress | None = None,
    transport: Transport | None = None,
    stop: threading.Event | None = None,
) -> DeliveryReport:
    """Send the due queued mails (not_before <= now); `stop` ends the run after the mails in flight."""
    started = time.monotonic()
    composer = Composer(project, now=now)  # settings problems (DKIM key...) surface before anything moves
    chosen = transport if transport is not None else make_transport(project)
    report = DeliveryReport(dry_run=dry_run, transport=_describe(chosen))
    store = project.store()
    if dry_run:
        _dry_run(store, composer, report, now, limit, progress)
    else:
        lock = lease.Lease(store, "delivery", lease.ttl_from_env(LOCK_TTL))
        holder = _take_lock(store, lock)
        if holder:
            report.busy = holder
            return report
        try:
            report.stopped = faults.unwritten_journal(project, store)  # its mails must not be recovered and sent again
            if not report.stopped:
                with _WRITE, store.transaction():
                    report.recovered = len(store.recover_sending_mails())
            due = store.count_due_mails(now)
            report.total = min(due, limit) if limit is not None else due
            if report.total and not report.stopped:
                _Run(project, chosen, composer, report, now, limit, progress, stop or threading.Event(), lock).go()
        finally:
            faults.settle(store, lock, report, _WRITE)
        if report.stopped:
            queued = faults.still_queued(store, now)
            report.stopped += f" ({queued} mail{'s' if queued != 1 else ''} still queued)" if queued else ""
    report.seconds = time.monotonic() - started
    return report


class _Run(FailureHandling):
    def __init__(
        self,
        project: Project,
        transport: Transport,
        composer: Composer,
        report: DeliveryReport,
        now: datetime,
        limit: int | None,
        progress: Progress | None,
        stop: threading.Event,
        lock: lease.Lease,
    ):
        self.project = project
        self.transport = transport
        self.composer = composer
        self.report = report
        self.now = now
        self.now_db = now
        self.budget = limit
        self.progress = progress
        self.stop = stop
        self.lease = lock
        self.lock = threading.Lock()
        self.started = time.monotonic()
        self.in_a_row = {TEMPORARY: 0, PERMANENT: 0}
        self.policy_streak: list[int] = []  # mails refused by policy at RCPT since the last success
        self.crash: BaseException | None = None
        store = project.store()
        saved = store.get_meta(_RATE_META)
        rate = transport.rate_per_minute or 0
        workers = max(1, min(int(transport.concurrency or 1), report.total))
        self.workers = workers
        self.limiter = RateLimiter(rate, start=float(saved) if saved else 0.0, burst=workers)

    def go(self) -> None:
        # Workers wait on sockets and SQLite many times per mail; with the default 5 ms GIL switch
        # interval each wake-up can wait behind a thread that is rendering (the convoy effect).
        previous = sys.getswitchinterval()
        if self.workers > 1:
            sys.setswitchinterval(SWITCH_INTERVAL)
        try:
            self._go()
        finally:
            sys.setswitchinterval(previous)

    def _go(self) -> None:
        threads = [
            threading.Thread(target=self._worker, name=f"edumail-send-{i}", daemon=True) for i in range(self.workers)
        ]
        for thread in threads:
            thread.start()
        store = self.project.store()
        try:
            while any(t.is_alive() for t in threads):
                for thread in threads:
                    thread.join(timeout=min(1.0, self.lease.ttl.total_seconds() / 4))
                self._keep_lease()
        except BaseException:
            self.stop.set()  # Ctrl-C / SIGTERM: finish the mails in flight, then leave
            for thread in threads:
                thread.join()
            raise
        finally:
            if self.limiter.interval:
                with _WRITE:
                    store.set_meta(_RATE_META, repr(self.limiter.tat))
        if self.crash is not None:
            raise self.crash

    # --- one worker thread ------------------------------------------------------------

    def _worker(self) -> None:
        try:
            store = self.project.open_store()
        except BaseException as exc:  # noqa: BLE001 - reported by the run, never a thread traceback
            self._died(None, None, exc)
            return
        connection = self.transport.connect()
        try:
            while not self.stop.is_set() and self._keep_lease() and self._take_budget():
                mail = None
                try:
                    with _WRITE:
                        mail = store.claim_due_mail(self.now_db)
                    if mail is None:
                        break
                    self._one(store, connection, mail)
                except BaseException as exc:  # noqa: BLE001 - put the mail back, stop everyone, say which mail
                    self._died(store, mail, exc)
                    break
                if self.progress is not None:
                    self.progress(self.report)
        finally:
            connection.close()
            store.close()

    def _died(self, store: Store | None, mail: dict[str, Any] | None, exc: BaseException) -> None:
        """A worker stops on a fault (a damaged database, a bug): the run reports it and exits 1."""
        reason = faults.put_back(store, mail, exc, _WRITE)
        with self.lock:
            if not isinstance(exc, Exception):
                self.crash = self.crash or exc  # Ctrl-C, SystemExit: re-raised in the caller
            self.report.stopped = self.report.stopped or reason
        self.stop.set()

    def _keep_lease(self) -> bool:
        """The lease renewed as the run goes; lost (we were frozen, another run took over): stop sending."""
        if self.lease.keep(_WRITE):
            return True
        with self.lock:
            self.report.stopped = self.report.stopped or self.lease.lost_message()
        self.stop.set()
        return False

    def _handover(self) -> datetime:
        """The run's `now` moved on by the real time spent since it started: each mail's Date (SPEC 20)."""
        return self.now + timedelta(seconds=time.monotonic() - self.started)

    def _take_budget(self) -> bool:
        with self.lock:
            if self.budget is None:
                return True
            if self.budget <= 0:
                return False
            self.budget -= 1
            return True

    def _one(self, store: Store, connection: Any, mail: dict[str, Any]) -> None:
        mail_id = int(mail["id"])
        try:
            composed = self.composer.compose(store, mail)
        except Skip as skip:
            with _WRITE:
                store.cancel_mail(mail_id, str(skip))
            self._count("cancelled")
            return
        except EdumailError as exc:  # a template or address problem: this mail fails, the others go on
            with _WRITE:
                store.fail_mail(mail_id, str(exc), attempted=False)
            self._count("failed", str(exc))
            return
        wait = self.limiter.reserve()
        if wait and self.stop.wait(wait):
            with _WRITE:
                store.release_mail(mail_id)
            return
        if not self._keep_lease():
            return  # left 'sending': the run that took delivery over recovered it
        envelope = self.composer.seal(composed, self._handover())
        try:
            connection.send(envelope)
        except SendFailure as failure:
            self._failed(store, mail, failure)
            return
        stop = faults.record_sent(self.project, store, mail, composed, self.now, _WRITE)
        if stop:
            self._halt(stop)
        with self.lock:
            self.report.sent += 1
            self.in_a_row = {TEMPORARY: 0, PERMANENT: 0}
            self.policy_streak = []


def _dry_run(
    store: Store,
    composer: Composer,
    report: DeliveryReport,
    now: datetime,
    limit: int | None,
    progress: Progress | None,
) -> None:
    """Render and build every due mail, change nothing: what `sent` would be."""
    mails = store.peek_due_mails(now, limit)
    report.total = len(mails)
    for mail in mails:
        try:
            composer.seal(composer.compose(store, mail))
            report.sent += 1
        except Skip as skip:
            report.cancelled += 1
            report._note(f"would cancel: {skip}")
        except EdumailError as exc:
            report.failed += 1
            report._note(str(exc))
        if progress is not None:
            progress(report)


# --- `edumail outbox retry` ---------------------------------------------------------------


@dataclass
class RetryReport:
    requeued: int = 0
    kept: dict[str, int] = field(default_factory=dict)  # reason -> mails left failed


def retry_failed(project: Project, *, now: datetime) -> RetryReport:
    """Re-queue failed mails, except those whose address bounced or that consent no longer allows."""
    store = project.store()
    report = RetryReport()
    with _WRITE, store.transaction():
        for mail in store.failed_mails():
            reason = None
            if mail["contact_id"] is not None:
                if mail["consent"] is None:
                    reason = "contact deleted"
                else:
                    reason = contacts.may_receive(mail, mail["purpose"])
            if reason:
                report.kept[reason] = report.kept.get(reason, 0) + 1
                continue
            store.requeue_mail(int(mail["id"]), now)
            report.requeued += 1
    return report


# --- the delivery lock ------------------------------------------------------------------


def _take_lock(store: Store, lock: lease.Lease) -> str | None:
    """None when we hold the 'delivery' lease; else who does ("host pid N")."""
    with _WRITE:
        holder = lock.take()
    if holder is None:
        return None
    host, pid = lease.parse_owner(str(holder["owner"]))
    return f"{host} pid {pid}"


def _describe(transport: Transport) -> str:
    return transport.describe()
