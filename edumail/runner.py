"""`edumail run --once`: check, lock, enrol and advance, POST webhooks, deliver.

The lock is a row in `locks` with an owner (host:pid) and an expiry that the
run renews as it goes: a second run waits a bounded time, then stops with a
message naming the holder; a lock left by a dead process on this host, or
expired, is taken over. The UNIQUE keys of journeys and mails stay the last
line of defence against a double send.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from uuid import uuid4

from edumail import clock, sequences, webhooks
from edumail.engine import Engine, EngineReport
from edumail.errors import EdumailError, NotAvailable

if TYPE_CHECKING:
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


def _wall_clock() -> datetime:
    # The lease protects real processes, so it follows the real clock, not EDUMAIL_NOW.
    return datetime.now(clock.UTC)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunLock:
    """The project-wide run lock, held for the duration of a `with` block."""

    def __init__(self, store: Store, *, wait: float = LOCK_WAIT, name: str = LOCK_NAME):
        self.store, self.wait, self.name = store, wait, name
        self.host = socket.gethostname()
        self.owner = f"{self.host}:{os.getpid()}:{uuid4().hex[:8]}"
        self.waited = 0.0

    def __enter__(self) -> RunLock:
        started = time.monotonic()
        while True:
            now = _wall_clock()
            holder = self.store.lock_holder(self.name)
            dead = [holder["owner"]] if holder and self._dead(holder["owner"]) else []
            holder = self.store.try_lock(self.name, self.owner, clock.to_db(now), clock.to_db(now + LEASE), dead)
            if holder["owner"] == self.owner:
                self.waited = time.monotonic() - started
                return self
            if time.monotonic() - started >= self.wait:
                host, pid = (holder["owner"].split(":") + ["?", "?"])[:2]
                raise LockBusy(
                    f"another `edumail run` is in progress (pid {pid} on {host}, since {holder['acquired_at'][:19]}Z); "
                    f"waited {self.wait:.0f}s. Try again later; if no run is alive, the lock expires at "
                    f"{holder['expires_at'][:19]}Z"
                )
            time.sleep(0.2)

    def _dead(self, owner: str) -> bool:
        host, _, rest = owner.partition(":")
        pid = rest.partition(":")[0]
        return host == self.host and pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid))

    def renew(self) -> None:
        if not self.store.renew_lock(self.name, self.owner, clock.to_db(_wall_clock() + LEASE)):
            raise LockBusy(
                "the run lock was taken over by another process (this run took longer than its lease); stopping"
            )

    def __exit__(self, *exc: object) -> None:
        self.store.release_lock(self.name, self.owner)


@dataclass
class RunSummary:
    now: datetime
    dry_run: bool
    engine: EngineReport
    webhooks: webhooks.WebhookReport | None = None
    delivery: Any = None
    delivery_note: str = ""
    pending_webhooks: int = 0


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
    """Everything a cron job does: stops on any sequence problem before anything happens."""
    loaded = sequences.load_all(project)
    store = project.store()
    with RunLock(store, wait=lock_wait) as lock:
        engine = Engine(project, loaded, backfill=backfill)
        engine.heartbeat = lock.renew
        if dry_run:
            with rolled_back(store):
                report = engine.run(now)
            summary = RunSummary(now, True, report, pending_webhooks=store.pending_tasks("webhook"))
        else:
            report = engine.run(now)
            summary = RunSummary(now, False, report)
            if store.due_tasks("webhook", clock.to_db(now), 1):
                summary.webhooks = webhooks.process(store, project.secret(), now)
            summary.pending_webhooks = store.pending_tasks("webhook")
        if deliver:
            summary.delivery, summary.delivery_note = _deliver(project, now, dry_run, stop)
    return summary


def _deliver(project: Project, now: datetime, dry_run: bool, stop: Any) -> tuple[Any, str]:
    try:
        from edumail import delivery
    except ImportError:
        return None, "delivery is not part of this version yet: mails stay queued in the outbox"
    deliver = getattr(delivery, "deliver", None)
    if deliver is None:
        return None, "delivery is not part of this version yet: mails stay queued in the outbox"
    try:
        if stop is not None:
            return deliver(project, now=now, dry_run=dry_run, stop=stop), ""
        return deliver(project, now=now, dry_run=dry_run), ""
    except NotAvailable as exc:
        return None, str(exc)
