"""SQL for the lease locks (`run`, `delivery`); see edumail/lease.py. Mixed into Store."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from edumail.store import Store


class LocksMixin:
    def take_lock(
        self: Store, name: str, owner: str, now: datetime, expires: datetime, dead_owners: Iterable[str] = ()
    ) -> dict[str, Any]:
        """Take the lock if it is free, expired or held by one of `dead_owners`; returns the holder."""
        with self.transaction():
            self.execute("DELETE FROM locks WHERE name = ? AND expires_at < ?", (name, now))
            for dead in dead_owners:
                self.execute("DELETE FROM locks WHERE name = ? AND owner = ?", (name, dead))
            self.execute(
                "INSERT OR IGNORE INTO locks (name, owner, acquired_at, expires_at) VALUES (?, ?, ?, ?)",
                (name, owner, now, expires),
            )
            holder = self.row("SELECT * FROM locks WHERE name = ?", (name,))
        assert holder is not None
        return holder

    def lock_holder(self: Store, name: str) -> dict[str, Any] | None:
        return self.row("SELECT * FROM locks WHERE name = ?", (name,))

    def renew_lock(self: Store, name: str, owner: str, expires: datetime) -> bool:
        with self.transaction():
            cursor = self.execute(
                "UPDATE locks SET expires_at = ? WHERE name = ? AND owner = ?", (expires, name, owner)
            )
        return cursor.rowcount > 0

    def release_lock(self: Store, name: str, owner: str) -> None:
        with self.transaction():
            self.execute("DELETE FROM locks WHERE name = ? AND owner = ?", (name, owner))


def live_leases(database: Path) -> list[tuple[str, str]]:
    """(name, owner) of the leases not yet expired, read without waiting (for a busy database's message).

    A plain read-only connection: opening a Store would migrate, which waits for the very lock in question."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    try:
        conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=0.5)
    except sqlite3.Error:
        return []
    try:
        return [(str(n), str(o)) for n, o in conn.execute("SELECT name, owner FROM locks WHERE expires_at > ?", (now,))]
    except sqlite3.Error:
        return []
    finally:
        conn.close()
