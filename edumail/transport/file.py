"""The default transport: each mail an .eml file in outbox/new/ (Maildir-style).

Files are written to outbox/tmp/ then renamed into outbox/new/, so a reader
never sees half a file. The name comes from the Message-ID: a mail re-sent
after a crash overwrites its own file instead of appearing twice.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from edumail.transport import TEMPORARY, Envelope, SendFailure

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def file_name(message_id: str) -> str:
    """The outbox file of a mail: its Message-ID's left part (erasure finds a person's files by it)."""
    return _UNSAFE.sub("_", message_id.strip("<>").partition("@")[0]) + ".eml"


class FileConnection:
    def __init__(self, root: Path):
        self.root = root
        self.new = root / "new"
        self.tmp = root / "tmp"
        for folder in (self.new, self.tmp, root / "cur"):
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)

    def send(self, envelope: Envelope) -> None:
        name = file_name(envelope.message_id)
        staging = self.tmp / name
        try:
            fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # mails hold personal data
            with os.fdopen(fd, "wb") as handle:
                handle.write(envelope.data)
            os.replace(staging, self.new / name)
        except OSError as exc:
            raise SendFailure(TEMPORARY, f"cannot write {self.new / name}: {exc.strerror or exc}") from None

    def close(self) -> None:
        pass


class FileTransport:
    """Writes outbox/new/<id>.eml; nothing leaves the machine."""

    name = "file"
    concurrency = 1  # building dominates and holds the GIL: more threads would not help
    rate_per_minute = 0

    def __init__(self, root: Path):
        self.root = Path(root)

    def connect(self) -> FileConnection:
        return FileConnection(self.root)

    def describe(self) -> str:
        return f"files in {self.root / 'new'}"
