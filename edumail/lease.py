"""One lease lock for the processes that must not run twice: `run` and delivery.

A lock is a row in `locks`: a name, an owner `host:pid:token`, when it was
taken and when it expires. The holder renews it as it goes; another process
takes it over when it expired, or when its owner is a process of this machine
that no longer exists. Leases follow the wall clock, never EDUMAIL_NOW: they
protect real processes.
"""

from __future__ import annotations

import os
import secrets
import socket
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from edumail import clock

if TYPE_CHECKING:
    from edumail.store import Store


def wall_clock() -> datetime:
    """The real time (UTC), whatever EDUMAIL_NOW says."""
    return datetime.now(clock.UTC)


def alive(pid: int) -> bool:
    """Does process `pid` exist on this machine?

    PermissionError means it exists but belongs to another user: alive.
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def parse_owner(owner: str) -> tuple[str, str]:
    """(host, pid) of an owner text `host:pid:token`; '?' for what is missing."""
    host, pid = ([*owner.split(":"), "?", "?"])[:2]
    return host or "?", pid or "?"


def dead(owner: str, host: str | None = None) -> bool:
    """True when `owner` is a process of this machine (other than us) that no longer exists."""
    owner_host, pid = parse_owner(owner)
    if owner_host != (host or socket.gethostname()) or not pid.isdigit() or int(pid) == os.getpid():
        return False
    return not alive(int(pid))


class Lease:
    """A named lease: take it (or learn who holds it), renew it, release it."""

    def __init__(self, store: Store, name: str, ttl: timedelta):
        self.store, self.name, self.ttl = store, name, ttl
        self.host = socket.gethostname()
        self.owner = f"{self.host}:{os.getpid()}:{secrets.token_hex(4)}"

    def take(self) -> dict[str, Any] | None:
        """None when we now hold it; else the holder's row (owner, acquired_at, expires_at as datetimes)."""
        now = wall_clock()
        holder = self.store.lock_holder(self.name)
        stale = [holder["owner"]] if holder and dead(holder["owner"], self.host) else []
        holder = self.store.take_lock(self.name, self.owner, now, now + self.ttl, stale)
        return None if holder["owner"] == self.owner else holder

    def renew(self) -> bool:
        """Push the expiry one ttl further; False when another process took the lease over."""
        return self.store.renew_lock(self.name, self.owner, wall_clock() + self.ttl)

    def release(self) -> None:
        self.store.release_lock(self.name, self.owner)


def describe(holder: dict[str, Any]) -> str:
    """`pid 123 on host` for a message naming who holds a lock."""
    host, pid = parse_owner(str(holder["owner"]))
    return f"pid {pid} on {host}"
