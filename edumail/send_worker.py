"""One sending worker: composes, signs and hands over the mails delivery gives it, over one connection.

Delivery (edumail.delivery) claims the mails and keeps every record; a worker
only turns a claimed mail into a result, which it sends back over its pipe:

    ("sent", id, subject, links, attachments)   the server accepted it
    ("failed", id, failure fields)              the transport said no (SendFailure)
    ("cancelled", id, reason)                   Skip: consent, a left topic, a deleted contact
    ("error", id, message)                      a template or address problem: this mail alone fails
    ("released", id)                            not tried: the run is stopping
    ("lease", id)                               not tried: the run's lease may have passed to another process
    ("died", id | None, reason)                 a fault (damaged database, a bug): the worker stops

Workers are processes (one connection each: sending uses every core) when the
transport comes from the settings, threads when a caller hands delivery a
transport object of its own. Either way they run `work` with the same pipe
protocol. A process worker stops as soon as its parent is gone (its pipe ends),
and never sends once the run's lease deadline has passed: a parent frozen past
its lease cannot have mails sent in its name after another process took over.
"""

from __future__ import annotations

import os
import select
import signal
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from edumail.errors import EdumailError
from edumail.settings import Settings
from edumail.transport import SendFailure, Transport


@dataclass(frozen=True)
class Setup:
    """What a worker needs to work as the run's process would: the project as loaded, the run's clock."""

    root: Path
    settings: Settings
    now: datetime
    started: float  # time.time() when the run began: a mail's Date is `now` moved on by the time since
    environ: dict[str, str] = field(default_factory=dict)  # a process worker's environment (secrets, EDUMAIL_*)
    cwd: str = ""


class RateLimiter:
    """Spaces sends evenly (GCRA) across every worker; the schedule persists across runs.

    Rate limiting is about the provider's wall clock, not the logical `now`. `cell` (a
    multiprocessing Value) shares the schedule between worker processes.
    """

    def __init__(
        self,
        per_minute: int,
        *,
        start: float = 0.0,
        burst: int = 1,
        clock_fn: Callable[[], float] = time.time,
        cell: Any = None,
    ) -> None:
        self.interval = 60.0 / per_minute if per_minute > 0 else 0.0
        self.tolerance = self.interval * max(burst - 1, 0)
        self.clock = clock_fn
        self.cell = cell if cell is not None else _Cell(start)
        if cell is not None:
            cell.value = start

    @property
    def tat(self) -> float:
        return float(self.cell.value)

    def reserve(self) -> float:
        """Take the next slot; returns how many seconds to wait before using it."""
        if not self.interval:
            return 0.0
        with self.cell.get_lock():
            now = self.clock()
            tat = max(self.cell.value, now)
            self.cell.value = tat + self.interval
            return max(0.0, tat - self.tolerance - now)


class _Cell:
    """A multiprocessing Value's interface, for a limiter that lives in one process."""

    def __init__(self, value: float):
        self.value = value
        self._lock = threading.Lock()

    def get_lock(self) -> threading.Lock:
        return self._lock


class Shared:
    """What every worker of a run sees: the stop flag, the lease deadline (time.time()), the rate limiter."""

    def __init__(self, context: Any, limiter_args: dict[str, Any]):
        self.stop = context.Event()
        self.deadline = context.Value("d", 0.0)
        self.limiter = RateLimiter(**limiter_args, cell=context.Value("d", 0.0))


# Workers yield the CPU to delivery's own process: when the cores are all busy composing, the records
# and the next claims (what every worker waits for) still go at once.
NICENESS = 5
# A worker reads one contact a mail, each a different one: SQLite's default 2 MB page cache would only
# hold pages it never reads again (the OS caches the file for every process alike).
CACHE_KB = 256


class ParentGone(Exception):
    """The pipe to delivery ended: the run is over or its process died; nothing more is sent."""


def process_main(channel: Any, setup: Setup, shared: Shared) -> None:
    """A worker process: the parent's environment and project, its own transport connection and store."""
    # Ctrl-C reaches the whole process group, a service manager's SIGTERM the whole cgroup: delivery winds
    # down (the mails in hand answered, the rest released) and closes the workers; a worker never stops alone.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        os.nice(NICENESS)
    except (OSError, AttributeError):  # no nice() (Windows) or not allowed: the same mails, less smoothly
        pass
    os.environ.clear()
    os.environ.update(setup.environ)
    if setup.cwd:
        os.chdir(setup.cwd)
    from edumail import clock
    from edumail.project import Project
    from edumail.transport import make

    clock.use_zone(setup.settings.tz)
    project = Project(root=setup.root, settings=setup.settings)
    try:
        transport = make(project)
    except BaseException as exc:  # noqa: BLE001 - reported by the run, never a worker traceback
        _say(channel, ("died", None, f"the transport could not start: {exc}"))
        return
    work(channel, setup, shared, project, transport)


class _Inbox:
    """What delivery sent a worker: mails to send (None: the end) and the verdicts on its hand-overs.

    A worker composes its next mail while delivery records the last one, but hands
    it over only once that record is made: a run that stops on a failure, a full
    disk or a kill has at most one mail a worker the server took and the store
    does not know yet.
    """

    def __init__(self, channel: Any):
        self.channel = channel
        self.mails: deque[Any] = deque()
        self.awaiting = False  # a hand-over whose verdict has not come yet
        self._poll = select.poll()  # Connection.poll() builds a selector at each call
        self._poll.register(channel.fileno(), select.POLLIN)

    def _read(self) -> None:
        try:
            message = self.channel.recv()
        except (EOFError, OSError):
            raise ParentGone() from None
        if message is None:  # the end
            self.mails.append(None)
            return
        go, mails = message  # the verdict on the last hand-over (recorded, or the run stops: see Shared.stop)
        if go:
            self.awaiting = False
        self.mails.extend(mails)

    def next(self) -> Any:
        while not self.mails:
            self._read()
        return self.mails.popleft()

    def verdict(self) -> None:
        """Wait until the last hand-over is recorded; then read whatever else came (a gone parent ends us)."""
        while self.awaiting:
            self._read()
        while self._poll.poll(0):
            self._read()


def work(channel: Any, setup: Setup, shared: Shared, project: Any, transport: Transport) -> None:
    """Take mails from `channel` until it sends None (or ends), answer each with its result."""
    from edumail.compose import Composer

    try:
        store = project.open_store()
        store.conn.execute(f"PRAGMA cache_size = -{CACHE_KB}")
        composer = Composer(project, now=setup.now)
    except BaseException as exc:  # noqa: BLE001
        _say(channel, ("died", None, _describe(exc)))
        return
    connection = transport.connect()
    inbox = _Inbox(channel)
    try:
        while (mail := inbox.next()) is not None:
            result = _one(inbox, setup, shared, store, composer, connection, mail)
            channel.send(result)
            # A mail cancelled in between has no verdict: the one awaited is still the last hand-over's.
            inbox.awaiting = inbox.awaiting or result[0] in ("sent", "failed")
            if result[0] == "died":
                break
    except (EOFError, OSError, ParentGone):
        pass  # the parent is gone: the mails it gave us are 'sending' and the next run sends them
    finally:
        connection.close()
        store.close()


def _one(
    inbox: _Inbox,
    setup: Setup,
    shared: Shared,
    store: Any,
    composer: Any,
    connection: Any,
    mail: dict[str, Any],
) -> tuple[Any, ...]:
    from edumail.compose import Skip

    mail_id = int(mail["id"])
    try:
        try:
            composed = composer.compose(store, mail)
        except Skip as skip:
            return ("cancelled", mail_id, str(skip))
        except EdumailError as exc:
            return ("error", mail_id, str(exc))
        inbox.verdict()
        if shared.stop.is_set():
            return ("released", mail_id)
        wait = shared.limiter.reserve()
        if wait and shared.stop.wait(wait):
            return ("released", mail_id)
        if time.time() >= shared.deadline.value:
            return ("lease", mail_id)
        at = setup.now + timedelta(seconds=time.time() - setup.started)
        try:
            connection.send(composer.seal(composed, at))
        except SendFailure as failure:
            return ("failed", mail_id, _fields(failure))
        return ("sent", mail_id, composed.subject, composed.links, composed.attachments)
    except ParentGone:
        raise
    except BaseException as exc:  # noqa: BLE001 - the run puts the mail back and says which mail
        return ("died", mail_id, _describe(exc))


def _fields(failure: SendFailure) -> tuple[Any, ...]:
    return (failure.kind, str(failure), failure.code, failure.status, failure.stage, failure.retry_after)


def failure_from(fields: tuple[Any, ...]) -> SendFailure:
    kind, message, code, status, stage, retry_after = fields
    failure = SendFailure(kind, message, code=code, status=status, stage=stage)
    failure.retry_after = retry_after
    return failure


def _describe(exc: BaseException) -> str:
    from edumail import dbfault

    return dbfault.describe(exc) if isinstance(exc, sqlite3.DatabaseError) else f"internal error {exc!r}"


def _say(channel: Any, result: tuple[Any, ...]) -> None:
    try:
        channel.send(result)
    except (OSError, EOFError):
        pass
