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

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from edumail.store import Store
from edumail.transport.file import file_name

WAL_WAIT = 10.0  # seconds a checkpoint waits for readers (a `serve` request, a `run`) to let the WAL go


@dataclass
class CleanUp:
    """What the clean-up removed, and what it could not."""

    files: int = 0
    rebuilt: bool = False
    problems: list[str] = field(default_factory=list)

    def summary(self) -> str:
        rebuilt = "; the database was rebuilt once to clear old free pages" if self.rebuilt else ""
        return f"{self.files} outbox file(s) deleted{rebuilt}"


def clean_up(store: Store, outbox: Path, addresses: Iterable[str], message_ids: Iterable[str]) -> CleanUp:
    """After the erasure committed: the people's outbox files, then the free pages and the WAL."""
    report = CleanUp()
    report.files = remove_outbox_files(outbox, addresses, message_ids, report.problems)
    report.rebuilt = store.vacuum_once()
    if not store.checkpoint_truncate(WAL_WAIT):
        report.problems.append(
            f"{store.path} and its -wal file still hold the erased data: another process kept a read open"
            f" for {WAL_WAIT:g} s (a long `edumail run` or `send`, a backup, a tool with the database open)."
            " Run this command again once it has finished: it completes the erasure"
        )
    return report


def remove_outbox_files(outbox: Path, addresses: Iterable[str], message_ids: Iterable[str], problems: list[str]) -> int:
    """Delete the .eml files of these mails (by name, in new/, cur/ or tmp/) and any file naming the address."""
    names = {file_name(m) for m in message_ids}
    needles = [a.strip().lower().encode() for a in addresses if a.strip()]
    if not outbox.is_dir():
        return 0
    removed = 0
    for path in sorted(outbox.rglob("*")):
        try:
            if not path.is_file():
                continue
            # A mail client reading the Maildir moves a file to cur/ as NAME:2,FLAGS.
            if path.name.split(":", 1)[0] not in names and not _mentions(path, needles):
                continue
            path.unlink()
            removed += 1
        except OSError as exc:
            problems.append(f"{path}: cannot delete it ({exc.strerror or exc}); delete it by hand")
    return removed


def _mentions(path: Path, needles: list[bytes]) -> bool:
    """The file names one of the addresses, whole (marie@... is not in annemarie@...)."""
    if not needles:
        return False
    data = path.read_bytes().lower()
    return any(re.search(rb"(?<![a-z0-9._%+-])" + re.escape(needle), data) for needle in needles if needle in data)
