"""Draining the outbox: workers, retries, the rate limit, exactly-once bookkeeping.

A mail moves queued -> sending -> sent | failed | cancelled (or back to queued
with a later not_before after a temporary failure). Claims and records are
short transactions, so a crash never loses a mail: what a dead run left in
'sending' goes out again on the next run with the same Message-ID. The only
duplicate possible is a mail the server accepted just before the process died,
before its 'sent' commit, and it carries the same Message-ID both times.

Sending uses every core: `smtp.concurrency` worker processes
(edumail.send_worker), each with one transport connection reused for many mails
and its own read-only use of the store, compose, sign and hand over; this
process claims mails for them in batches and records their results in batches
(edumail.send_pool carries both). At most PER_WORKER mails a worker are
'sending' at any moment, and a worker hands a mail over only once its previous
one is recorded: a SIGKILL leaves at most one mail a worker that the server took
and the store does not know (the ambiguous window: it goes again, with its
Message-ID), and a stop decided on a failure is seen before the next hand-over. A
caller that passes its own transport object gets threads instead of processes.
One process drains at a time (the 'delivery' lease); a run that finds another
one draining leaves it alone.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from edumail import contacts, dbfault, lease, send_worker
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
from edumail.send_worker import RateLimiter  # noqa: F401 (importable from here)
from edumail.store import Store
from edumail.transport import PERMANENT, TEMPORARY, Transport
from edumail.transport import make as make_transport

if TYPE_CHECKING:
    from edumail import send_pool

LOCK_TTL = timedelta(seconds=120)  # renewed while the run lasts
_RATE_META = "delivery.rate_tat"
PER_WORKER = 2  # mails a worker holds: the one it hands over, the next it composes meanwhile

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
                stop = stop or threading.Event()
                _Run(project, chosen, composer, report, now, limit, progress, stop, lock, transport is None).go()
        finally:
            faults.settle(store, lock, report, _WRITE)
        if report.stopped:
            queued = faults.still_queued(store, now)
            report.stopped += f" ({queued} mail{'s' if queued != 1 else ''} still queued)" if queued else ""
    report.seconds = time.monotonic() - started
    return report


class _Run(FailureHandling):
    """Delivery's side of a run: claims mails for the workers, keeps every record, decides on failures.

    Each round records the mails the workers sent and claims as many as they have
    room for, in one transaction; then it decides on each other result (a
    refusal, a deferral) and gives each worker its verdict, which it waits for
    before its next hand-over. At most `per_worker` mails a worker are 'sending'
    at any time, at most one of them handed over: a SIGKILL can leave only that
    one sent twice, with its Message-ID.
    """

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
        own_transport: bool,
    ):
        self.project = project
        self.report = report
        self.now = now
        self.budget = limit
        self.progress = progress
        self.stop = stop
        self.lease = lock
        self.lock = threading.Lock()
        self.in_a_row = {TEMPORARY: 0, PERMANENT: 0}
        self.policy_streak: list[int] = []  # mails refused by policy at RCPT since the last success
        self.drained = False  # a claim found fewer due mails than asked: nothing more to claim this run
        self.transport = None if own_transport else transport  # None: worker processes make their own
        store = project.store()
        saved = store.get_meta(_RATE_META)
        rate = int(transport.rate_per_minute or 0)
        self.workers = max(1, min(int(transport.concurrency or 1), report.total))
        self.per_worker = 1 if rate else PER_WORKER  # under a rate limit a second mail would only wait
        self.limiter_args = {"per_minute": rate, "start": float(saved) if saved else 0.0, "burst": self.workers}
        self.tick = min(1.0, self.lease.ttl.total_seconds() / 4)

    def go(self) -> None:
        import multiprocessing  # noqa: PLC0415 - only a run with mails due starts workers

        from edumail import send_pool  # noqa: PLC0415

        processes = self.transport is None
        ctx = send_pool.context() if processes else multiprocessing
        self.shared = send_worker.Shared(ctx, self.limiter_args)
        setup = send_worker.Setup(
            self.project.root,
            self.project.settings,
            self.now,
            started=time.time(),
            environ=dict(os.environ) if processes else {},
            cwd=os.getcwd(),
        )
        self._keep_lease()
        pool = send_pool.Pool(
            setup,
            self.shared,
            workers=self.workers,
            per_worker=self.per_worker,
            project=self.project,
            transport=self.transport,
        )
        try:
            self._rounds(pool)
        except BaseException:
            self._wind_down(pool)  # Ctrl-C / SIGTERM: record what the workers have in flight, then leave
            raise
        finally:
            pool.close()
            if self.shared.limiter.interval:
                with _WRITE:
                    self.project.store().set_meta(_RATE_META, repr(self.shared.limiter.tat))

    def _rounds(self, pool: send_pool.Pool) -> None:
        store = self.project.store()
        self._settle(store, pool, [])
        while pool.in_flight:
            if self.stop.is_set():
                self.shared.stop.set()
            self._keep_lease()
            self._settle(store, pool, pool.collect(self.tick))

    def _wind_down(self, pool: send_pool.Pool) -> None:
        """Stop giving mails; wait for each worker's answer about the mails it holds and record them."""
        self.stop.set()
        self.shared.stop.set()
        for worker in range(len(pool.alive)):
            pool.go(worker)  # a verdict the interruption held back: with the stop set, they only give mails back
        store = self.project.store()
        while pool.in_flight and any(pool.alive):
            try:
                self._settle(store, pool, pool.collect(self.tick))
            except KeyboardInterrupt:
                continue  # a second Ctrl-C: the mails in flight are still being answered
            except sqlite3.DatabaseError:
                return  # the same fault again: what is left 'sending' goes out on the next run

    def _record_and_claim(self, store: Store, pool: send_pool.Pool, sent: list[faults.Sent]) -> list[Any]:
        """One transaction a round: the mails the server took, and the next ones for the workers' room."""
        room = 0 if self.stop.is_set() or self.drained else pool.room()
        if self.budget is not None:
            room = min(room, self.budget)
        if not sent and not room:
            return []
        try:
            with _WRITE, store.transaction():
                if sent:
                    faults.write_sent(store, sent, self.now)
                mails = store.claim_due_mails(self.now, room) if room else []
        except sqlite3.DatabaseError as exc:
            if sent and dbfault.is_full(exc):
                self._halt(faults.keep_all_accepted(self.project, store, sent, self.now, _WRITE))
            else:
                self._halt(f"delivery stopped: {dbfault.describe(exc)}")
            return []
        self.drained = len(mails) < room
        if self.budget is not None:
            self.budget -= len(mails)
        return mails

    def _keep_lease(self) -> bool:
        """The lease renewed as the run goes; lost (we were frozen, another run took over): stop sending."""
        if self.lease.keep(_WRITE):
            self.shared.deadline.value = self.lease.valid_until()
            return True
        self.shared.deadline.value = 0.0
        self._halt(self.lease.lost_message())
        return False

    # --- the results of a round -----------------------------------------------------------

    def _settle(self, store: Store, pool: send_pool.Pool, results: list[send_pool.Result]) -> None:
        sent = [(mail, *result[2:]) for _, result, mail in results if result[0] == "sent"]
        for mail in self._record_and_claim(store, pool, sent):
            pool.give(mail)
        for worker, result, mail in results:
            self._one(store, pool, worker, result, mail)
        for worker, result, _ in results:  # after every verdict: a stop one decided is seen before any hand-over
            if result[0] in ("sent", "failed"):
                pool.go(worker)
            if self.progress is not None:
                self.progress(self.report)

    def _one(self, store: Store, pool: send_pool.Pool, worker: int, result: tuple[Any, ...], mail: Any) -> None:
        what = result[0]
        if what == "sent":
            with self.lock:
                self.report.sent += 1
                self.in_a_row = {TEMPORARY: 0, PERMANENT: 0}
                self.policy_streak = []
        elif what == "failed":
            self._failed(store, mail, send_worker.failure_from(result[2]))
        elif what == "cancelled":
            with _WRITE:
                store.cancel_mail(int(mail["id"]), result[2])
            self._count("cancelled")
        elif what == "error":  # a template or address problem: this mail fails, the others go on
            with _WRITE:
                store.fail_mail(int(mail["id"]), result[2], attempted=False)
            self._count("failed", result[2])
        elif what == "released" or (what == "lease" and self._keep_lease()):
            with _WRITE:
                store.release_mail(int(mail["id"]))
        elif what == "died":
            self._halt(faults.put_back(store, mail, result[2], _WRITE))
        elif what == "gone":
            self._gone(store, pool, worker)
        # "lease" with the lease lost: left 'sending', the run that took delivery over recovered it

    def _halt(self, message: str) -> None:
        super()._halt(message)
        self.shared.stop.set()  # before the verdict reaches the workers

    def _gone(self, store: Store, pool: send_pool.Pool, worker: int) -> None:
        """A worker ended: what it still held goes back to the queue; unless the run was ending, it stops."""
        orphans = pool.orphans(worker)
        for mail in orphans:
            faults.put_back(store, mail, "", _WRITE)
        if orphans or not self.stop.is_set():
            code = pool.exit_code(worker)
            which = f" at mail {orphans[0]['id']} (template {orphans[0]['template']})" if orphans else ""
            self._halt(f"a sending worker stopped{which}: it ended with exit status {code}; run again")


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
