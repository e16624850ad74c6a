"""`alerts: {email: ...}` (SPEC 11): one plain French mail to staff when delivery stops or a sequence file
is skipped for an error, at most once a day per problem.

An alert is an outbox mail of template `__alert__` with no contact: compose writes it like a `notify:`
staff mail, delivery never records it as a contact's `email_sent`, stats never count it, and a bounce
of it never touches a contact. The day each problem was last alerted is kept in `meta`
(`alert:KIND:KEY` -> local date), so the same problem alerts again the next day.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import TYPE_CHECKING

from edumail.message import new_message_id
from edumail.typography import french_spacing

if TYPE_CHECKING:
    from edumail.project import Project

TEMPLATE = "__alert__"

_CLASSES = (  # delivery stop reasons, by class: the key of "the same problem"
    ("password", re.compile(r"password|mot de passe", re.I)),
    ("login", re.compile(r"\b53[45]\b|auth|login", re.I)),
    ("policy", re.compile(r"policy|5\.7\.\d|blocklist", re.I)),
    ("refusals", re.compile(r"refused \d+ mails in a row", re.I)),
    ("deferrals", re.compile(r"deferred \d+ mails in a row", re.I)),
)


def delivery_class(reason: str) -> str:
    """Which kind of delivery stop this is (a server reply's wording changes; its class does not)."""
    for name, pattern in _CLASSES:
        if pattern.search(reason):
            return name
    return "server"


def delivery_stopped(project: Project, reason: str, now: datetime) -> str | None:
    """Alert staff that delivery stopped; returns what to print, or None (no alerts setting, or already today)."""
    body = (
        "L'envoi des e-mails s'est arrêté : les messages restent en file d'attente, rien n'est perdu.\n\n"
        f"Raison : {reason}\n\n"
        "Que faire : vérifiez les réglages smtp ou provider de edumail.yaml, le mot de passe (la variable "
        "d'environnement) et, pour un blocage, SPF, DKIM et DMARC du domaine. Ensuite, `edumail run --once` "
        "envoie ce qui attend ; `edumail outbox` montre la file."
    )
    queued = _queue(project, "delivery", delivery_class(reason), "[edumail] L'envoi des e-mails est arrêté", body, now)
    if queued is None:
        return None
    return f"alert to {queued} queued: it goes out once delivery works again (this alert waits in the outbox too)"


def sequence_skipped(project: Project, problem: str, now: datetime) -> str | None:
    """Alert staff that a sequence file was skipped (`file:line: message`); what to print, or None."""
    file = problem.split(":", 1)[0]
    body = (
        f"La séquence {file} n'a pas été exécutée : elle contient une erreur. Ses parcours attendent, "
        "les autres séquences continuent.\n\n"
        f"Erreur : {problem}\n\n"
        "Que faire : corrigez le fichier ; `edumail check` dit tout ce qui ne va pas. La prochaine exécution "
        "reprend la séquence là où elle en était."
    )
    queued = _queue(project, "sequence", file, f"[edumail] Séquence ignorée : {file}", body, now)
    return None if queued is None else f"alert to {queued} queued about {file}"


def _queue(project: Project, kind: str, key: str, subject: str, body: str, now: datetime) -> str | None:
    alerts = project.settings.alerts
    if alerts is None:
        return None
    store = project.store()
    day = now.astimezone(project.settings.tz).date().isoformat()
    meta = f"alert:{kind}:{key}"
    with store.transaction():
        if store.get_meta(meta) == day:
            return None
        store.set_meta(meta, day)
        store.enqueue_mail(
            message_id=new_message_id(project.settings.sender.domain),
            template=TEMPLATE,
            purpose="service",
            not_before=now,
            now=now,
            to_email=alerts.email,
            context={"subject": french_spacing(subject), "body": french_spacing(body)},
            step_id=meta,
        )
    return alerts.email
