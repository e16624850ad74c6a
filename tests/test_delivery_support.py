"""Shared helpers for the delivery tests: a project with a template, contacts, queued mails.

(Named test_delivery_* so it stays with the delivery tests; it holds no tests.)
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from edumail import project as project_module
from edumail.message import new_message_id
from edumail.project import Project

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday, 10:00 in Paris
STAMP = "2026-03-02T09:00:00.000000Z"

SETTINGS = """\
sender:
  name: Centre de formation Exemple
  email: contact@centre.example
  reply_to: inscriptions@centre.example
timezone: Europe/Paris
"""

TRACKING = """\
tracking:
  base_url: https://mail.centre.example
"""

TEMPLATE = """\
---
subject: "{{ contact.first_name }}, votre session approche"
---
<html><head><style>p { color: #333333; }</style></head><body>
<p>Bonjour {{ contact.first_name }} {{ contact.last_name }},</p>
<p><a href="https://centre.example/programme?id=7&amp;x=1">Programme</a>
<a href="https://centre.example/inscription">S'inscrire</a>
<a href="https://centre.example/programme?id=7&amp;x=1">Encore le programme</a>
<a href="mailto:inscriptions@centre.example">Nous écrire</a></p>
<p><a href="{{ unsubscribe_url }}">Se désinscrire</a></p>
</body></html>
"""

FORGETFUL = """\
---
subject: Sans lien de désinscription
---
<html><body><p>Bonjour {{ contact.first_name }}</p></body></html>
"""


def make_project(root: Path, *, extra: str = "", tracking: bool = True) -> Project:
    """A project folder with the `session` and `forgetful` templates."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "edumail.yaml").write_text(SETTINGS + (TRACKING if tracking else "") + extra, encoding="utf-8")
    (root / "templates").mkdir(exist_ok=True)
    (root / "sequences").mkdir(exist_ok=True)
    (root / "templates" / "session.html").write_text(TEMPLATE, encoding="utf-8")
    (root / "templates" / "forgetful.html").write_text(FORGETFUL, encoding="utf-8")
    return project_module.load(root)


def add_contacts(
    project: Project,
    count: int,
    *,
    consent: str = "opted_in",
    start: int = 0,
    first_name: str = "Zoé",
    last_name: str = "Martin",
    tags: list[str] | None = None,
    fields: str = "{}",
) -> list[int]:
    store = project.store()
    ids = []
    with store.transaction():
        for n in range(start, start + count):
            contact_id = store.insert_contact(
                {
                    "email": f"contact{n}@example.org",
                    "first_name": first_name,
                    "last_name": last_name,
                    "consent": consent,
                    "consent_basis": "opt_in" if consent == "opted_in" else None,
                    "fields": fields,
                },
                STAMP,
            )
            for tag in tags or []:
                store.add_tag(contact_id, tag, STAMP)
            ids.append(contact_id)
    return ids


def queue(
    project: Project,
    contact_ids: list[int],
    *,
    purpose: str = "marketing",
    template: str = "session",
    not_before: str = STAMP,
    context: dict | None = None,
) -> list[int]:
    store = project.store()
    ids = []
    with store.transaction():
        for contact_id in contact_ids:
            mail_id = store.enqueue_mail(
                message_id=new_message_id("centre.example"),
                template=template,
                purpose=purpose,
                not_before=not_before,
                now=STAMP,
                contact_id=contact_id,
                context=context or {"event": {}},
            )
            assert mail_id
            ids.append(mail_id)
    return ids


def states(project: Project) -> dict[str, int]:
    return project.store().outbox_counts()
