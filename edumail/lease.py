"""One lease lock for the processes that must not run twice: `run` and delivery.

A lock is a row in `locks`: a name, an owner `host:pid:token`, when it was
taken and when it expires. The holder renews it as it goes; another process
takes it over when it expired, or when its owner is a process of this machine
that no longer exists. Leases follow the wall clock, never EDUMAIL_NOW: they
protect real processes. EDUMAIL_LEASE_TTL (seconds) shortens them, for tests
and for hosts that freeze processes (a suspended VM, SIGSTOP).

A holder that was frozen past its TTL may find, when it wakes, that another
process took over: `keep` says so (its monotonic clock counts the frozen
time, so the first check after waking renews), and the holder must stop.
"""

from __future__ import annotations

import os
import secrets
import socket
import threading
import time
from contextlib import nullcontext
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from edumail import clock
from edumail.errors import EdumailError

if TYPE_CHECKING:
    from edumail.store import Store


def wall_clock() -> datetime:
    """The real time (UTC), whatever EDUMAIL_NOW says."""
    return datetime.now(clock.UTC)


def ttl_from_env(default: timedelta) -> timedelta:
    """EDUMAIL_LEASE_TTL (seconds) when it is set, else `default`."""
    given = os.environ.get("EDUMAIL_LEASE_TTL", "").strip()
    if not given:
        return default
    try:
        seconds = float(given)
    except ValueError:
        seconds = 0.0
    if not 0 < seconds <= 86400:
        raise EdumailError(
            f"EDUMAIL_LEASE_TTL={given!r}: expected a number of seconds (e.g. 120); unset it for the default"
        )
    return timedelta(seconds=seconds)


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
        self.lost = False  # another process took it over while we held it
        self._renewed = time.monotonic()
        self._keeping = threading.Lock()

    def take(self) -> dict[str, Any] | None:
        """None when we now hold it; else the holder's row (owner, acquired_at, expires_at as datetimes)."""
        now = wall_clock()
        holder = self.store.lock_holder(self.name)
        stale = [holder["owner"]] if holder and dead(holder["owner"], self.host) else []
        holder = self.store.take_lock(self.name, self.owner, now, now + self.ttl, stale)
        self._renewed = time.monotonic()
        return None if holder["owner"] == self.owner else holder

    def renew(self) -> bool:
        """Push the expiry one ttl further; False (and `lost` from then on) when another process took it over."""
        if not self.lost:
            self.lost = not self.store.renew_lock(self.name, self.owner, wall_clock() + self.ttl)
            self._renewed = time.monotonic()
        return not self.lost

    def keep(self, write: threading.Lock | None = None) -> bool:
        """Renew once a quarter of the TTL has passed since the last renewal; False once the lease is lost.

        Cheap enough to call before every mail: it writes only every ttl/4. `write` is held while writing.
        """
        with self._keeping:
            if self.lost:
                return False
            if time.monotonic() - self._renewed <= self.ttl.total_seconds() / 4:
                return True
            with write or nullcontext():
                return self.renew()

    def valid_until(self) -> float:
        """The time.time() at which the lease runs out unless renewed (workers check it before each mail)."""
        return time.time() + self.ttl.total_seconds() - (time.monotonic() - self._renewed)

    def lost_message(self) -> str:
        """What a holder that lost its lease says (who took it over, what is left to them)."""
        holder = self.store.lock_holder(self.name)
        who = describe(holder) if holder else "another edumail process"
        return (
            f"{who} took {self.name} over while this process was frozen for longer than its lease"
            f" ({self.ttl.total_seconds():g} s): stopped at once, its claimed mails are left to the new owner"
        )

    def release(self) -> None:
        self.store.release_lock(self.name, self.owner)


def describe(holder: dict[str, Any]) -> str:
    """`pid 123 on host` for a message naming who holds a lock."""
    host, pid = parse_owner(str(holder["owner"]))
    return f"pid {pid} on {host}"
