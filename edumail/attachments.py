"""Attachments (SPEC 14): files under the project's `files/` folder, named per mail by the template.

A path may not leave `files/` (`..`, an absolute path, a symlink pointing
out): refused. The MIME type comes from the extension. A mail never goes out
without a file its template names: a missing one fails that mail, with the path.
"""

from __future__ import annotations

import hashlib
import mimetypes
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from edumail.errors import InputError

FILES_DIR = "files"
DEFAULT_LIMIT_MB = 10


@dataclass(frozen=True)
class Attachment:
    name: str  # the file name the recipient sees
    path: str  # relative to files/
    mime: str
    data: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    def proof(self) -> dict[str, str]:
        """What the audit keeps: the name, the path, the size and the SHA-256 of the bytes sent."""
        return {"name": self.name, "path": self.path, "size": str(len(self.data)), "sha256": self.sha256}


def resolve(root: Path, entry: str) -> Path:
    """The file `entry` names under root/files/, or InputError when it would leave that folder."""
    text = entry.strip()
    if not text:
        raise InputError("attachments: an entry rendered empty")
    relative = PurePosixPath(text.replace("\\", "/"))
    if relative.is_absolute() or text.startswith("/") or (len(text) > 1 and text[1] == ":"):
        raise InputError(f"attachments: {text!r} is an absolute path; name a file under {FILES_DIR}/")
    if ".." in relative.parts:
        raise InputError(f"attachments: {text!r} leaves {FILES_DIR}/ ('..' is not allowed)")
    base = (root / FILES_DIR).resolve()
    target = (base / relative).resolve()
    if target != base and base not in target.parents:
        raise InputError(f"attachments: {text!r} points outside {FILES_DIR}/ (a link out of the folder)")
    return target


def load(root: Path, entries: list[str] | tuple[str, ...], limit_mb: int = DEFAULT_LIMIT_MB) -> list[Attachment]:
    """Read the files a rendered template names; InputError (with the path) for a missing or too large one."""
    found: list[Attachment] = []
    total = 0
    for entry in entries:
        target = resolve(root, entry)
        shown = f"{FILES_DIR}/{entry.strip()}"
        try:
            data = target.read_bytes()
        except FileNotFoundError:
            raise InputError(f"attachment {shown} does not exist; the mail was not sent without it") from None
        except IsADirectoryError:
            raise InputError(f"attachment {shown} is a folder, not a file") from None
        except OSError as exc:
            raise InputError(f"attachment {shown} cannot be read ({exc.strerror})") from None
        total += len(data)
        if limit_mb and total > limit_mb * 1024 * 1024:
            raise InputError(
                f"attachments: {total / 1048576:.1f} MB with {shown}, over limits.attachments_mb ({limit_mb} MB)"
            )
        mime = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        found.append(Attachment(target.name, entry.strip(), mime, data))
    return found


def missing_static(root: Path, entries: list[str] | tuple[str, ...]) -> list[str]:
    """Problems with the entries that hold no Jinja (the same file for everyone): for `check`."""
    problems = []
    for entry in entries:
        if "{" in entry:
            continue
        try:
            target = resolve(root, entry)
        except InputError as exc:
            problems.append(str(exc))
            continue
        if not target.is_file():
            problems.append(f"attachment {FILES_DIR}/{entry.strip()} does not exist")
    return problems
