"""The SQLite store: every SQL statement of edumail lives in this package.

One file shared by `run`, `serve` and cron jobs: WAL mode, a busy timeout,
short write transactions (BEGIN IMMEDIATE), secure_delete (erased bytes are
zeroed, not left in free space). Area modules add their queries
to `Store` as mixins, one per area: audience, campaigns, contacts, gdpr,
journeys, locks, outbox, sessions, tasks, tracking.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from edumail.clock import from_db, to_db
from edumail.errors import EdumailError
from edumail.store.audience import AudienceMixin
from edumail.store.campaigns import CampaignsMixin
from edumail.store.contacts import ContactsMixin
from edumail.store.forms import FormsMixin
from edumail.store.gdpr import CLEAN_META, GdprMixin
from edumail.store.journeys import JourneysMixin
from edumail.store.locks import LocksMixin
from edumail.store.outbox import OutboxMixin
from edumail.store.schema import MIGRATIONS
from edumail.store.sessions import SessionsMixin
from edumail.store.tasks import TasksMixin
from edumail.store.tracking import TrackingMixin

BUSY_TIMEOUT_MS = 30_000  # EDUMAIL_BUSY_TIMEOUT (seconds) changes it


def busy_timeout_ms() -> int:
    """How long a write waits for another process's lock before giving up."""
    given = os.environ.get("EDUMAIL_BUSY_TIMEOUT", "").strip()
    try:
        return max(0, int(float(given) * 1000)) if given else BUSY_TIMEOUT_MS
    except ValueError:
        raise EdumailError(f"EDUMAIL_BUSY_TIMEOUT={given!r}: expected a number of seconds, e.g. 30") from None


def _refuse_empty(path: Path) -> None:
    """A 0-byte database is damage, not a new project: opening it would forget the suppression list."""
    try:
        empty = path.stat().st_size == 0
    except OSError:
        return
    if empty:
        raise EdumailError(
            f"{path} is empty (0 bytes): the database was truncated or not copied. Restore it from your last "
            f"backup (with its -wal file if there is one); edumail will not start over, which would forget "
            f"the unsubscribed and forgotten addresses. To start a new project on purpose, delete the file."
        )


class Store(
    AudienceMixin,
    CampaignsMixin,
    ContactsMixin,
    JourneysMixin,
    LocksMixin,
    OutboxMixin,
    SessionsMixin,
    TasksMixin,
    TrackingMixin,
    GdprMixin,
    FormsMixin,
):
    """A connection to the project's database; use one per thread."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        _refuse_empty(self.path)
        self.busy_ms = busy_timeout_ms()
        try:
            conn = sqlite3.connect(
                str(self.path), timeout=self.busy_ms / 1000, isolation_level=None, check_same_thread=False
            )
            conn.execute(f"PRAGMA busy_timeout = {self.busy_ms}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("PRAGMA secure_delete = ON")  # what is deleted or rewritten is zeroed (SPEC 20)
            _owner_only(self.path)
        except sqlite3.DatabaseError as exc:
            raise EdumailError(f"{self.path}: cannot open the database ({exc}); is it an edumail.db?") from None
        self.conn = conn
        self._depth = 0
        self._lock = threading.RLock()
        self._migrate()

    # --- plumbing -----------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """A write transaction (BEGIN IMMEDIATE); nested calls join the outer one."""
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            self.conn.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield
            except BaseException:
                self._depth = 0
                if self.conn.in_transaction:  # SQLite may have rolled back already (a full disk, a busy lock)
                    self.conn.execute("ROLLBACK")
                raise
            self._depth = 0
            self.conn.execute("COMMIT")

    @contextmanager
    def waiting(self, seconds: float | None) -> Iterator[None]:
        """Wait at most `seconds` for another process's write lock (None: the usual busy timeout)."""
        if seconds is None:
            yield
            return
        self.conn.execute(f"PRAGMA busy_timeout = {int(seconds * 1000)}")
        try:
            yield
        finally:
            self.conn.execute(f"PRAGMA busy_timeout = {self.busy_ms}")

    def execute(self, sql: str, params: Any = ()) -> sqlite3.Cursor:
        return self.conn.execute(sql, _params(params))

    @property
    def db(self) -> Any:
        """sqlite-utils over this connection, for introspection (table names, schemas); loaded on first use."""
        import sqlite_utils

        return sqlite_utils.Database(self.conn)

    def query(self, sql: str, params: Any = ()) -> Iterator[dict[str, Any]]:
        """Rows as dicts, times as aware datetimes."""
        cursor = self.conn.execute(sql, _params(params))
        names = [column[0] for column in cursor.description or ()]
        # A write with RETURNING (claiming a mail) completes, and commits outside a transaction,
        # only once its rows are read: read them all now.
        rows = cursor if sql.split(None, 1)[0].upper() == "SELECT" else cursor.fetchall()
        for row in rows:
            yield _times(dict(zip(names, row, strict=True)))

    def rows(self, sql: str, params: Any = ()) -> list[dict[str, Any]]:
        return list(self.query(sql, params))

    def row(self, sql: str, params: Any = ()) -> dict[str, Any] | None:
        for found in self.query(sql, params):
            return found
        return None

    def scalar(self, sql: str, params: Any = ()) -> Any:
        found = self.conn.execute(sql, _params(params)).fetchone()
        return found[0] if found else None

    def moment(self, sql: str, params: Any = ()) -> datetime | None:
        """A scalar time (MIN, MAX...) as an aware datetime, or None."""
        found = self.scalar(sql, params)
        return from_db(found) if found else None

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- schema -------------------------------------------------------------

    @property
    def version(self) -> int:
        return int(self.scalar("SELECT COALESCE(MAX(version), 0) FROM schema_version") or 0)

    def _migrate(self) -> None:
        self.conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)"
        )
        done = {int(v) for (v,) in self.conn.execute("SELECT version FROM schema_version")}
        latest = max(version for version, _ in MIGRATIONS)
        if done and max(done) > latest:
            raise EdumailError(
                f"{self.path}: made by a newer edumail (schema {max(done)}, this one knows {latest}); upgrade edumail"
            )
        # Every listed version not yet recorded, in order: versions are reserved per change, so a lower
        # one may land after a higher one was applied.
        for version, script in sorted(MIGRATIONS):
            if version in done:
                continue
            with self.transaction():
                for statement in _statements(script):
                    self.conn.execute(statement)
                self.conn.execute(
                    "INSERT INTO schema_version (version, applied_at)"
                    " VALUES (?, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))",
                    (version,),
                )
        if not done:  # a new database: written with secure_delete from its first byte, no old free space
            self.set_meta(CLEAN_META, "1")

    # --- meta ---------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        return self.scalar("SELECT value FROM meta WHERE key = ?", (key,))

    def set_meta(self, key: str, value: str) -> None:
        self.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )


# Every column (and alias) holding a time: stored as UTC text, handed out as aware datetimes.
TIME_COLUMNS = frozenset(
    {
        "acquired_at",
        "added_at",
        "applied_at",
        "at",
        "bounced_at",
        "created_at",
        "due_at",
        "ended_at",
        "expires_at",
        "first_attempt_at",
        "first_seen_at",
        "forgotten_at",
        "last_inbound_at",
        "last_schedule_at",
        "last_sign",
        "last_step_at",
        "not_before",
        "queued_at",
        "recorded_at",
        "scheduled_at",
        "sending_at",
        "sent_at",
        "since",
        "until",
        "imported_at",
        "confirmed_at",
        "started_at",
        "updated_at",
        "start_at",
        "end_at",
    }
)


def _params(params: Any) -> Any:
    """Datetimes in the parameters become the store's UTC text."""
    if isinstance(params, dict):
        return {k: to_db(v) if isinstance(v, datetime) else v for k, v in params.items()}
    return [to_db(v) if isinstance(v, datetime) else v for v in params]


def _times(found: dict[str, Any]) -> dict[str, Any]:
    for key in TIME_COLUMNS.intersection(found):
        value = found[key]
        if isinstance(value, str) and value:
            found[key] = from_db(value)
    return found


def _statements(script: str) -> list[str]:
    """Split a script on ';' at line ends (executescript would commit our transaction)."""
    parts, current = [], []
    for line in script.splitlines():
        code = line.split("--", 1)[0]
        current.append(code)
        if code.rstrip().endswith(";"):
            parts.append("\n".join(current).strip())
            current = []
    tail = "\n".join(current).strip()
    if tail:
        parts.append(tail)
    return [p for p in parts if p]


def _owner_only(path: Path) -> None:
    """The database, its WAL and SHM readable by their owner only (SPEC 20), whatever the umask.

    Done once SQLite has created the file: SQLite gives a WAL and SHM it creates later the same mode.
    """
    for name in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        try:
            info = name.stat()
            if info.st_mode & 0o077 and info.st_uid == os.getuid():
                os.chmod(name, 0o600)
        except OSError:
            pass  # not there, or not ours: SQLite reports what matters
