"""`edumail init`: a complete, working project from the shipped library."""

from __future__ import annotations

import os
import secrets
import shutil
from pathlib import Path

import edumail
from edumail.errors import EdumailError
from edumail.settings import SECRET_FILE, SETTINGS_FILE

SETTINGS_TEMPLATE = """\
# edumail settings: see README.md, "Settings reference".
sender:
  name: {name}
  email: {email}
  # reply_to: inscriptions@centre.example

# "file" writes each mail as an .eml file in outbox/ (nothing leaves the
# machine); switch to "smtp" and fill the smtp: section to send for real.
transport: file
# smtp:
#   host: smtp.example.org
#   port: 587
#   security: starttls
#   username: contact@centre.example
#   password_env: EDUMAIL_SMTP_PASSWORD   # the password comes from this variable
#   concurrency: 4
#   rate_per_minute: 600

database: edumail.db
timezone: Europe/Paris
locale: fr_FR

# tracking:
#   base_url: https://mail.centre.example   # where `edumail serve` is reachable
#   opens: true
#   clicks: true

send_window:
  days: [mon, tue, wed, thu, fri]
  hours: "08:00-19:00"

limits:
  marketing_per_week: 3
  max_late: 1d

# The kinds of marketing a contact can leave one by one (preference and
# unsubscribe pages); `topic:` in a sequence, `--topic` on `edumail send`.
topics:
  newsletter: La lettre mensuelle
  offres: Offres et promotions
"""

GITIGNORE = "edumail.db\nedumail.db-*\noutbox/\n.edumail-secret\n"


def library_root() -> Path:
    """Where the shipped templates/, sequences/ and contacts.csv.example are."""
    installed = Path(edumail.__file__).parent / "library"
    if (installed / "templates").is_dir():
        return installed
    source = Path(edumail.__file__).parent.parent
    if (source / "templates").is_dir() and (source / "sequences").is_dir():
        return source
    raise EdumailError(f"the template library is missing from this installation ({installed}); reinstall edumail")


def init_project(
    target: Path, *, name: str = "Centre de formation Exemple", email: str = "contact@centre.example"
) -> list[str]:
    """Create a project in `target`; refuses to touch an existing one. Returns what was written."""
    if (target / SETTINGS_FILE).exists():
        raise EdumailError(f"{target / SETTINGS_FILE} already exists: {target} is a project already (nothing changed)")
    for sub in ("templates", "sequences", "forms"):
        if (target / sub).exists() and any((target / sub).iterdir()):
            raise EdumailError(f"{target / sub} exists and is not empty; choose an empty folder (nothing changed)")
    source = library_root()
    target.mkdir(parents=True, exist_ok=True)
    written = []
    shutil.copytree(source / "templates", target / "templates", dirs_exist_ok=True)
    written.append("templates/")
    shutil.copytree(source / "sequences", target / "sequences", dirs_exist_ok=True)
    written.append("sequences/")
    if (source / "forms").is_dir():
        shutil.copytree(source / "forms", target / "forms", dirs_exist_ok=True)
        written.append("forms/")
    if (source / "files").is_dir():  # placeholder attachments the library's templates name (SPEC 14)
        (target / "files").mkdir(exist_ok=True)
        for placeholder in (source / "files").iterdir():
            if placeholder.is_file() and not (target / "files" / placeholder.name).exists():
                shutil.copy(placeholder, target / "files" / placeholder.name)  # never over the centre's own file
        written.append("files/")
    shutil.copy(source / "contacts.csv.example", target / "contacts.csv.example")
    written.append("contacts.csv.example")
    (target / SETTINGS_FILE).write_text(SETTINGS_TEMPLATE.format(name=name, email=email), encoding="utf-8")
    written.append(SETTINGS_FILE)
    secret_path = target / SECRET_FILE
    if not secret_path.exists():
        fd = os.open(secret_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(32) + "\n")
        written.append(SECRET_FILE)
    gitignore = target / ".gitignore"
    if not gitignore.exists():
        gitignore.write_text(GITIGNORE, encoding="utf-8")
        written.append(".gitignore")
    (target / "outbox").mkdir(exist_ok=True)
    return written
