"""Attachments (SPEC 14): files under the project's `files/` folder, named per mail by the template.

A path may not leave `files/` (`..`, an absolute path, a symlink pointing
out): refused. The MIME type comes from the extension. A mail never goes out
without a file its template names: a missing one fails that mail, with the path.
"""

from __future__ import annotations

import hashlib
import mimetypes
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from edumail.errors import InputError

if TYPE_CHECKING:
    from edumail.project import Project

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


def show_size(size: int) -> str:
    """340 KB, 1.2 MB, 900 B (1 KB = 1024 bytes, as `limits.attachments_mb` counts)."""
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{round(size / 1024)} KB"
    return f"{size / 1048576:.1f} MB"


def summary(proofs: list[dict[str, Any]] | tuple[dict[str, Any], ...]) -> str:
    """`2 files, 340 KB` for the attachments of one mail (their proofs: name, path, size, sha256); '' for none."""
    if not proofs:
        return ""
    total = sum(int(p.get("size") or 0) for p in proofs)
    return f"{len(proofs)} file{'s' if len(proofs) != 1 else ''}, {show_size(total)}"


def pending(project: Project, rows: list[dict[str, Any]], now: datetime) -> dict[int, str]:
    """For listed mails not sent yet whose template attaches files: what each would carry now (`2 files,
    340 KB`), or why it cannot (`missing: files/...`). Composed exactly as delivery will, nothing sent."""
    from edumail.compose import Composer, Skip
    from edumail.errors import EdumailError
    from edumail.render import TemplateLibrary

    library = TemplateLibrary(project.templates_dir, project.settings)
    attaching = set()
    for name in {str(r["template"]) for r in rows}:
        try:
            if library.get(name).attachments:
                attaching.add(name)
        except EdumailError:
            continue  # a template that cannot be read: the run says why
    if not attaching:
        return {}
    try:
        composer = Composer(project, now=now, library=library)
    except EdumailError:
        return {}
    store, found = project.store(), {}
    for row in rows:
        mail = store.mail(int(row["id"])) if row["template"] in attaching else None
        if mail is None:
            continue
        try:
            found[int(row["id"])] = summary(composer.compose(store, mail).attachments)
        except Skip:
            continue
        except EdumailError as exc:
            found[int(row["id"])] = "" if row["state"] == "failed" else f"cannot attach: {exc}"
    return found
