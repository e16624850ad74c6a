"""What an erasure does beyond the rows (SPEC 20): the outbox's files, the WAL, old free pages.

`gdpr.anonymise` blanks the person in every table, in one transaction. The
bytes it replaced may still be elsewhere: in the .eml files the file
transport wrote, in the WAL (SQLite appends changed pages there; the old
frames stay until a checkpoint truncates it) and, for a database written
before edumail turned `secure_delete` on, in free pages. `clean_up` removes
all three; what it cannot (a reader keeping the WAL) it says, so the command
can exit 1.
"""

from __future__ import annotations

import os
import re
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from edumail import journal
from edumail.transport.file import file_name

if TYPE_CHECKING:
    from edumail.project import Project

CHUNK = 1 << 20
WAL_WAIT = 10.0  # seconds a checkpoint waits for readers (a `serve` request, a `run`) to let the WAL go


@dataclass
class CleanUp:
    """What the clean-up removed, and what it could not."""

    files: int = 0
    rebuilt: bool = False
    problems: list[str] = field(default_factory=list)  # what edumail could not erase: exit status 1
    strays: list[str] = field(default_factory=list)  # the operator's own files that name the person

    def summary(self) -> str:
        rebuilt = "; the database was rebuilt once to clear old free pages" if self.rebuilt else ""
        return f"{self.files} outbox file(s) deleted{rebuilt}"


def clean_up(project: Project, addresses: Iterable[str], message_ids: Iterable[str]) -> CleanUp:
    """After the erasure committed: the people's outbox files, the free pages and the WAL, then a last look
    at every other file of the project folder for the addresses."""
    store, report = project.store(), CleanUp()
    wanted = [a.strip().lower() for a in addresses if a.strip()]
    report.files = remove_outbox_files(project.outbox_dir, wanted, message_ids, report.problems)
    if journal.pending(store.path):  # writes a full disk or a long lock kept aside: theirs are dropped
        journal.replay(store, store.path, wait=WAL_WAIT)
    try:
        report.rebuilt = store.vacuum_once()
    except sqlite3.OperationalError as exc:  # another process writing for longer than the busy timeout
        report.problems.append(
            f"{store.path}: the one-time rebuild that clears free pages written before secure_delete could not"
            f" run ({exc}); run this command again when no other edumail process is working"
        )
    if not store.checkpoint_truncate(WAL_WAIT):
        report.problems.append(
            f"{store.path} and its -wal file still hold the erased data: another process kept a read open"
            f" for {WAL_WAIT:g} s (a long `edumail run` or `send`, a backup, a tool with the database open)."
            " Run this command again once it has finished: it completes the erasure"
        )
    elif journal.pending(store.path):
        report.problems.append(
            f"{journal.path_for(store.path)} still holds writes the database could not take yet (a full disk,"
            " a lock held by another process): run this command again once the database takes writes again;"
            " it completes the erasure"
        )
    else:
        report.problems += [
            f"{path}: still holds a forgotten address after the erasure (an edumail bug: please report it)"
            for path in _database_files(store.path)
            if _names(path, wanted)
        ]
    report.strays = stray_files(project.root, wanted, skip={project.outbox_dir, *_database_files(store.path)})
    return report


def stray_files(root: Path, addresses: list[str], skip: set[Path]) -> list[str]:
    """Files of the project folder that edumail did not write but that name an address (an import file, an
    export, an audit, a per-person attachment): the operator's to delete or edit, said one by one."""
    found = []
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = sorted(d for d in subfolders if not d.startswith(".") and Path(folder, d) not in skip)
        for name in sorted(files):
            path = Path(folder, name)
            if path in skip:
                continue
            relative = path.relative_to(root)
            who = _whole(str(relative).lower().encode(), addresses) or _names(path, addresses)
            if who:
                found.append(
                    f"{relative}: still names {who} (a file made or copied here outside edumail's records: an import,"
                    " an export, an audit, an attachment); delete it or remove the person from it"
                )
    return found


def _database_files(db: Path) -> list[Path]:
    return [db, *(db.with_name(db.name + suffix) for suffix in ("-wal", "-shm"))]


def _names(path: Path, addresses: list[str]) -> str | None:
    """The first address the file holds whole (marie@... is not in annemarie@...), read in chunks."""
    overlap = max((len(a.encode()) for a in addresses), default=0) + 1
    try:
        with path.open("rb") as handle:
            tail = b""
            while chunk := handle.read(CHUNK):
                data = tail + chunk.lower()
                found = _whole(data, addresses)
                if found:
                    return found
                tail = data[-overlap:]
    except OSError:
        return None
    return None


def _whole(data: bytes, addresses: list[str]) -> str | None:
    """The first address written whole in `data` (lower case): not preceded by what an address may hold."""
    for address in addresses:
        needle = address.encode()
        if needle in data and re.search(rb"(?<![a-z0-9._%+-])" + re.escape(needle), data):
            return address
    return None


def remove_outbox_files(outbox: Path, addresses: list[str], message_ids: Iterable[str], problems: list[str]) -> int:
    """Delete the .eml files of these mails (by name, in new/, cur/ or tmp/) and any file naming an address."""
    names = {file_name(m) for m in message_ids}
    if not outbox.is_dir():
        return 0
    removed = 0
    for path in sorted(outbox.rglob("*")):
        try:
            if not path.is_file():
                continue
            # A mail client reading the Maildir moves a file to cur/ as NAME:2,FLAGS.
            if path.name.split(":", 1)[0] not in names and not _names(path, addresses):
                continue
            path.unlink()
            removed += 1
        except OSError as exc:
            problems.append(f"{path}: cannot delete it ({exc.strerror or exc}); delete it by hand")
    return removed
