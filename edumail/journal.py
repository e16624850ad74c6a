"""Writes the database could not take (a full disk, a lock held too long), kept until it can.

A one-click unsubscribe must never be lost, and a mail the server accepted
must never be sent again because its record did not fit on the disk. When
the database refuses such a write, it goes to `.edumail-journal` beside the
database (JSON lines, owner-only), and the next store open (any command, or
serve's next request) replays it and deletes the file. Replaying twice is
harmless: each entry checks what is already recorded.
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edumail import clock, dbfault

if TYPE_CHECKING:
    from edumail.store import Store

NAME = ".edumail-journal"
SENT = "sent"
UNSUBSCRIBE = "unsubscribe"


def path_for(database: Path) -> Path:
    return database.with_name(NAME)


def pending(database: Path) -> bool:
    return path_for(database).exists()


def append(database: Path, entry: dict[str, Any]) -> None:
    """Add one entry (durably: fsync); raises OSError when even this small file cannot be written."""
    line = (json.dumps(entry, ensure_ascii=False, default=clock.to_db) + "\n").encode("utf-8")
    path = path_for(database)
    while True:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            if _same_file(fd, path):  # not replayed and deleted while we waited for the lock
                os.fchmod(fd, 0o600)
                os.write(fd, line)
                os.fsync(fd)
                return
        finally:
            os.close(fd)


def replay(store: Store, database: Path, *, wait: float | None = None) -> int:
    """Record what the journal holds, then delete it; returns the entries replayed (0: nothing, or not now)."""
    path = path_for(database)
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return 0
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return 0  # another process is replaying it
        if not _same_file(fd, path):
            return 0
        entries = _entries(os.read(fd, os.fstat(fd).st_size))
        try:
            with store.waiting(wait), store.transaction():
                for entry in entries:
                    _apply(store, entry)
        except sqlite3.DatabaseError as exc:
            if dbfault.is_busy(exc) or dbfault.is_full(exc):
                return 0  # still no room or no turn: the next write tries again
            raise
        os.unlink(path)
        return len(entries)
    finally:
        os.close(fd)


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.fstat(fd).st_ino == path.stat().st_ino
    except FileNotFoundError:
        return False


def _entries(raw: bytes) -> list[dict[str, Any]]:
    entries = []
    for line in raw.decode("utf-8", "replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue  # a line torn by a crash while it was written: the rest still counts
        if isinstance(entry, dict):
            entries.append(entry)
    return entries


def _apply(store: Store, entry: dict[str, Any]) -> None:
    if entry.get("kind") == SENT:
        _apply_sent(store, entry)
    elif entry.get("kind") == UNSUBSCRIBE:
        _apply_unsubscribe(store, entry)


# --- a mail the server accepted --------------------------------------------------------------


def keep_sent(database: Path, mail: dict[str, Any], at: datetime, subject: str, links: list[str], data: Any) -> None:
    """The record of an accepted mail that the database refused; OSError if the journal cannot take it either."""
    entry = {"kind": SENT, "mail_id": int(mail["id"]), "contact_id": mail.get("contact_id"), "at": at}
    append(database, {**entry, "subject": subject, "links": links, "data": data})


def _apply_sent(store: Store, entry: dict[str, Any]) -> None:
    from edumail import contacts

    mail_id = int(entry["mail_id"])
    mail = store.mail(mail_id)
    if mail is not None and _forgotten(store, mail["contact_id"]):
        return  # erased since (contacts forget, purge): its subject and data must not come back
    if mail is None or not (mail["state"] == "sending" or (mail["state"] == "sent" and mail["subject"] is None)):
        return  # gone, or already recorded in full
    at = clock.from_db(str(entry["at"]))
    store.complete_sent_mail(mail_id, at, str(entry["subject"]), list(entry["links"]))
    contacts.record_sent(store, mail, at=at, data=entry["data"])


def _forgotten(store: Store, contact_id: int | None) -> bool:
    contact = store.contact(int(contact_id)) if contact_id is not None else None
    return contact is not None and bool(contact["forgotten_at"])


# --- a one-click unsubscribe -------------------------------------------------------------------


def keep_unsubscribe(
    database: Path, mail_id: int, scope: str, method: str, proof: dict[str, Any], at: datetime
) -> None:
    entry = {"kind": UNSUBSCRIBE, "mail_id": mail_id, "scope": scope, "method": method, "proof": proof, "at": at}
    append(database, entry)


def _apply_unsubscribe(store: Store, entry: dict[str, Any]) -> None:
    from edumail import preferences, recording

    mail = store.tracked_mail(int(entry["mail_id"]))
    if mail is None or not recording.reachable(mail):
        return
    at = clock.from_db(str(entry["at"]))
    proof = dict(entry.get("proof") or {})
    preferences.unsubscribe(store, mail, str(entry["scope"]), method=str(entry["method"]), proof=proof, now=at)
