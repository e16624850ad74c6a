"""`edumail audit` (SPEC 15): the Qualiopi proof, from what the store holds and nothing else.

For each session in scope and each of its learners: every mail of their
session journeys (queued, sent, Message-ID, the server's answer, delivered or
bounced, opened or clicked by a person), attendance, and whether and when
`evaluation_completee` arrived (with its note); per session and for the whole
scope, the evaluation response rate and the mean note. What is missing says
"manquant". Written as audit.html (French, one printed page per session) and
audit.csv (one row per learner and mail).
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from edumail import contacts, events, sessions
from edumail.errors import InputError
from edumail.store import Store

MISSING = "manquant"
CSV_COLUMNS = (
    "session",
    "formation",
    "debut",
    "fin",
    "statut_session",
    "apprenant",
    "email",
    "presence",
    "mail",
    "sequence",
    "etape",
    "mis_en_file",
    "envoye",
    "message_id",
    "reponse_serveur",
    "distribution",
    "ouvert_par_une_personne",
    "clique_par_une_personne",
    "pieces_jointes",
    "evaluation_completee",
    "note",
)


@dataclass
class MailProof:
    template: str
    sequence: str
    step: str
    state: str
    queued_at: datetime | None
    sent_at: datetime | None
    message_id: str
    answer: str
    delivery: str
    opened: datetime | None
    clicked: datetime | None
    attachments: list[dict[str, str]]


@dataclass
class LearnerProof:
    name: str
    email: str
    attendance: str
    mails: list[MailProof]
    evaluated_at: datetime | None
    note: float | None


@dataclass
class SessionProof:
    session: dict[str, Any]
    learners: list[LearnerProof]

    @property
    def expected(self) -> list[LearnerProof]:
        """Who should answer the evaluation: the learners marked present, else (no attendance kept) all;
        nobody for a cancelled session."""
        if self.session.get("status") == "cancelled":
            return []
        present = [lp for lp in self.learners if lp.attendance == events.PRESENT]
        marked = any(lp.attendance for lp in self.learners)
        return present if marked else list(self.learners)

    @property
    def respondents(self) -> list[LearnerProof]:
        return [lp for lp in self.expected if lp.evaluated_at is not None]


@dataclass
class Audit:
    scope: str
    sessions: list[SessionProof] = field(default_factory=list)

    def rates(self, items: list[SessionProof] | None = None) -> dict[str, Any]:
        """Response rate and mean note over these sessions (default: all in scope)."""
        chosen = self.sessions if items is None else items
        expected = sum(len(s.expected) for s in chosen)
        answered = [lp for s in chosen for lp in s.respondents]
        notes = [lp.note for lp in answered if lp.note is not None]
        return {
            "expected": expected,
            "respondents": len(answered),
            "rate": len(answered) / expected if expected else None,
            "notes": len(notes),
            "mean_note": sum(notes) / len(notes) if notes else None,
        }


def build(
    store: Store,
    *,
    session_id: str | None = None,
    email: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    tz: Any = UTC,
) -> Audit:
    """Gather the proof for one session, one learner's sessions, or the sessions starting in [since, until)."""
    chosen = [session_id is not None, email is not None, since is not None or until is not None]
    if sum(chosen) != 1:
        raise InputError("give one of --session ID, --contact EMAIL, or --from ISO --until ISO")
    only: int | None = None
    if session_id is not None:
        found = [sessions.require(store, session_id)]
        scope = f"session {found[0]['id']}"
    elif email is not None:
        contact = contacts.require(store, email)
        only = int(contact["id"])
        found = list(store.sessions_by_ids(store.contact_session_ids(only)).values())
        found.sort(key=lambda s: (s["start"], s["id"]))
        scope = f"apprenant {contact['email']}"
    else:
        if since is None or until is None:
            raise InputError("a period needs both --from and --until")
        if until <= since:
            raise InputError("--until must come after --from")
        found = [s for s in store.list_sessions(since=since, until=until) if s["start"] >= since]
        scope = f"sessions commençant du {local(since, tz)} au {local(until, tz)} (exclu)"
    audit = Audit(scope)
    for session in found:
        audit.sessions.append(_session_proof(store, session, only, tz))
    return audit


def _session_proof(store: Store, session: dict[str, Any], only: int | None, tz: Any) -> SessionProof:
    entries = [e for e in sessions.learners(store, session["id"]) if only is None or e["contact"]["id"] == only]
    mail_ids = [int(m["id"]) for e in entries for m in e["mails"]]
    trail = store.mail_events(mail_ids)
    learners = []
    for entry in entries:
        evaluation = entry["evaluation"]
        learners.append(
            LearnerProof(
                name=contacts.display_name(entry["contact"]),
                email=entry["contact"]["email"],
                attendance=sessions.attendance(entry),
                mails=[_mail_proof(m, trail.get(int(m["id"]), []), tz) for m in entry["mails"] if not m["to_email"]],
                evaluated_at=evaluation["at"] if evaluation else None,
                note=_note(evaluation),
            )
        )
    return SessionProof(session, learners)


def _note(evaluation: dict[str, Any] | None) -> float | None:
    if evaluation is None or evaluation["data"].get("note") in (None, ""):
        return None
    try:
        return float(str(evaluation["data"]["note"]).replace(",", "."))
    except ValueError:
        return None


def _mail_proof(mail: dict[str, Any], trail: list[dict[str, Any]], tz: Any) -> MailProof:
    people = [e for e in trail if not e["machine"]]
    opened = next((e["at"] for e in people if e["name"] in (events.EMAIL_OPENED, events.EMAIL_CLICKED)), None)
    clicked = next((e["at"] for e in people if e["name"] == events.EMAIL_CLICKED), None)
    bounce = next((e for e in trail if e["name"] == events.BOUNCED), None)
    delivered = next((e for e in trail if e["name"] == "email_delivered"), None)
    if bounce is not None:
        delivery = f"rebond ({_data(bounce['data']).get('kind', '?')}) le {local(bounce['at'], tz)}"
    elif delivered is not None:
        delivery = f"distribué le {local(delivered['at'], tz)}"
    elif mail["state"] == "sent":
        delivery = "accepté par le serveur, aucun rebond reçu"
    else:
        delivery = {"queued": "en attente d'envoi", "sending": "en cours d'envoi"}.get(mail["state"], MISSING)
    if mail["state"] == "sent":
        answer = "acceptation (2xx)"
    elif mail.get("last_error"):
        answer = str(mail["last_error"])
    else:
        answer = MISSING if mail["state"] != "queued" else "pas encore envoyé"
    return MailProof(
        template=mail["template"],
        sequence=mail.get("sequence") or "",
        step=mail.get("step_id") or "",
        state=mail["state"],
        queued_at=mail["queued_at"],
        sent_at=mail["sent_at"],
        message_id=mail["message_id"],
        answer=answer,
        delivery=delivery,
        opened=opened,
        clicked=clicked,
        attachments=_files(
            next((_data(e["data"]).get("attachments") for e in trail if e["name"] == "email_sent"), None)
        ),
    )


def _data(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    found = json.loads(value or "{}")
    return found if isinstance(found, dict) else {}


def _files(value: Any) -> list[dict[str, str]]:
    """The attachments a mail carried (name, sha256), as recorded when it was sent."""
    found = json.loads(value) if isinstance(value, str) and value else value or []
    return [f for f in found if isinstance(f, dict)]


# --- output -------------------------------------------------------------------------------------


ATTENDANCE = {events.PRESENT: "présent", events.ABSENT: "absent"}


def local(moment: datetime | None, tz: Any) -> str:
    return _local(moment, tz) if moment is not None else ""


@lru_cache(maxsize=65536)  # a session's mails share a handful of times: a year's audit formats each once
def _local(moment: datetime, tz: Any) -> str:
    return moment.astimezone(tz).strftime("%d/%m/%Y %H:%M")


def to_csv(audit: Audit, tz: Any) -> str:
    """One row per learner and mail (a learner without any mail: one row saying so)."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for proof in audit.sessions:
        s = proof.session
        head = [s["id"], s["formation"], local(s["start"], tz), local(s["end"], tz), s["status"]]
        for lp in proof.learners:
            who = [lp.name, lp.email, ATTENDANCE.get(lp.attendance, "non renseignée")]
            tail = [local(lp.evaluated_at, tz) or "non", "" if lp.note is None else f"{lp.note:g}"]
            if not lp.mails:
                writer.writerow([*head, *who, f"aucun mail ({MISSING})", *[""] * 11, *tail])
            for m in lp.mails:
                files = " | ".join(f"{a['name']} sha256:{a['sha256']}" for a in m.attachments) or "aucune"
                writer.writerow(
                    [
                        *head,
                        *who,
                        m.template,
                        m.sequence,
                        m.step,
                        local(m.queued_at, tz) or MISSING,
                        local(m.sent_at, tz) or (MISSING if m.state in ("failed", "cancelled") else "pas encore"),
                        m.message_id,
                        m.answer,
                        m.delivery,
                        local(m.opened, tz) or "non",
                        local(m.clicked, tz) or "non",
                        files,
                        *tail,
                    ]
                )
    return "\ufeff" + out.getvalue()  # Excel opens a UTF-8 CSV right only with its BOM


def write(audit: Audit, out: Path, tz: Any, centre: str, now: datetime) -> list[Path]:
    from edumail import audit_html

    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"{out}: cannot create the folder ({exc.strerror})") from None
    html_path, csv_path = out / "audit.html", out / "audit.csv"
    html_path.write_text(audit_html.render(audit, tz, centre, now), encoding="utf-8")
    csv_path.write_text(to_csv(audit, tz), encoding="utf-8")
    return [html_path, csv_path]
