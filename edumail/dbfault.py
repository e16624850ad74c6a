"""What a SQLite failure means for the user: a damaged file, a full disk, a lock held too long.

These are faults of the file, the disk or another process, never of the
user's input: each becomes one line saying what happened and what to do.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from edumail.errors import EdumailError

_FULL = 13  # SQLITE_FULL
_BUSY = (5, 6)  # SQLITE_BUSY, SQLITE_LOCKED
_DAMAGED = (11, 26)  # SQLITE_CORRUPT, SQLITE_NOTADB


class DatabaseFault(EdumailError):
    """A database that cannot be read or written; the message says why and what to do."""


def _code(exc: BaseException) -> int | None:
    code = getattr(exc, "sqlite_errorcode", None)
    return int(code) & 0xFF if isinstance(code, int) else None


def is_full(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.DatabaseError) and (_code(exc) == _FULL or "is full" in str(exc))


def is_busy(exc: BaseException) -> bool:
    text = str(exc)
    return isinstance(exc, sqlite3.DatabaseError) and (_code(exc) in _BUSY or "locked" in text or "busy" in text)


def is_damaged(exc: BaseException) -> bool:
    text = str(exc)
    return isinstance(exc, sqlite3.DatabaseError) and (
        _code(exc) in _DAMAGED or "malformed" in text or "not a database" in text or "corrupt" in text
    )


def describe(exc: sqlite3.DatabaseError, database: str = "edumail.db", holder: str | None = None) -> str:
    """The one line a user reads for this SQLite failure (`holder`: who holds the lock, when known)."""
    if is_busy(exc):
        return busy_message(holder)
    if is_full(exc):
        return (
            f"the disk is full: {database} could not be written (what was done is kept, the rest is "
            "still queued); free some space on that disk, then run the command again"
        )
    if is_damaged(exc):
        return (
            f"the database file is damaged ({exc}): stop every edumail process, keep a copy of {database}, then "
            f'restore your last backup, or rescue what can be read with `sqlite3 {database} ".recover" '
            "| sqlite3 recovered.db` and put recovered.db in its place"
        )
    return f"the database failed ({exc}); run the command again, and check the disk if it keeps failing"


def busy_message(holder: str | None = None) -> str:
    who = f"another edumail process ({holder})" if holder else "another edumail process (run, send, serve or import)"
    return f"the database is busy: {who} holds it; nothing was changed here: try again in a moment"


def lock_holders(database: Path) -> str | None:
    """The edumail runs holding a lease on `database` (`run`, pid 12 on host), for the busy line."""
    from edumail import lease
    from edumail.store.locks import live_leases

    found = [f"`{name}`, {lease.describe({'owner': owner})}" for name, owner in live_leases(database)]
    return "; ".join(found) or None
