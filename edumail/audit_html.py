"""audit.html: the Qualiopi proof as one printable French page per session (no script, no external file)."""

from __future__ import annotations

from datetime import datetime
from html import escape
from typing import Any

from edumail.audit import ATTENDANCE, MISSING, Audit, MailProof, SessionProof, local

STYLE = """
@page { size: A4 landscape; margin: 12mm; }
body { font-family: "DejaVu Sans", Arial, sans-serif; font-size: 10pt; color: #1a1a1a; margin: 0 16px; }
h1 { font-size: 17pt; margin: 12px 0 4px; }
h2 { font-size: 13pt; margin: 0 0 4px; color: #123d6a; }
p { margin: 2px 0 6px; }
.lead { color: #444; }
table { border-collapse: collapse; width: 100%; margin: 6px 0 10px; }
th, td { border: 1px solid #9aa5b1; padding: 3px 5px; text-align: left; vertical-align: top; }
th { background: #e8eef5; font-weight: bold; }
td.num, th.num { text-align: right; }
.missing { color: #a10000; font-weight: bold; }
.ok { color: #0b5d1e; }
.small { font-size: 8.5pt; word-break: break-all; }
section { page-break-before: always; break-before: page; padding-top: 6px; }
dl { display: grid; grid-template-columns: max-content auto; gap: 1px 10px; margin: 4px 0 8px; }
dt { font-weight: bold; }
dd { margin: 0; }
"""


def _pct(value: float | None) -> str:
    return MISSING if value is None else f"{value * 100:.0f} %".replace(".", ",")


def _mean(value: float | None) -> str:
    return "aucune note" if value is None else f"{value:.1f} / 10".replace(".", ",")


def _cell(text: str, missing: bool = False, css: str = "") -> str:
    if not missing and not css:
        return f"<td>{escape(text)}</td>"
    classes = f"{css} missing".strip() if missing else css
    return f'<td class="{classes}">{escape(text)}</td>'


def render(audit: Audit, tz: Any, centre: str, now: datetime) -> str:
    rates = audit.rates()
    rows = "".join(_summary_row(p, audit, tz) for p in audit.sessions)
    sections = "".join(_section(p, audit, tz) for p in audit.sessions)
    empty = "<p>Aucune session dans ce périmètre.</p>" if not audit.sessions else ""
    return f"""<!DOCTYPE html>
<html lang="fr"><head><meta charset="utf-8"><title>Preuves Qualiopi – {escape(centre)}</title>
<style>{STYLE}</style></head><body>
<h1>Preuves d'envoi et d'évaluation – {escape(centre)}</h1>
<p class="lead">Périmètre : {escape(audit.scope)}. Rapport établi le {escape(local(now, tz))}
(heure de {escape(str(tz))}) à partir du journal d'edumail ; rien n'y est reconstitué :
une preuve absente est signalée « {MISSING} ».</p>
<p>Taux de réponse aux évaluations sur la période : <b>{_pct(rates["rate"])}</b>
({rates["respondents"]} réponse(s) sur {rates["expected"]} apprenant(s) attendu(s)) ;
note moyenne : <b>{_mean(rates["mean_note"])}</b> ({rates["notes"]} note(s)).</p>
<table><thead><tr><th>Session</th><th>Formation</th><th>Dates</th><th>Statut</th>
<th class="num">Apprenants</th><th class="num">Mails envoyés</th><th class="num">Évaluations</th>
<th class="num">Taux</th><th class="num">Note moyenne</th>
</tr></thead><tbody>{rows}</tbody></table>{empty}
<p class="small">Lecture : « Apprenants attendus » pour l'évaluation = les apprenants marqués présents,
ou tous si la présence n'a pas été enregistrée. « Ouvert » et « cliqué » ne comptent que les personnes
(les ouvertures par un robot ou un anti-virus sont écartées).</p>
{sections}</body></html>
"""


def _summary_row(proof: SessionProof, audit: Audit, tz: Any) -> str:
    s, rates = proof.session, audit.rates([proof])
    sent = sum(1 for lp in proof.learners for m in lp.mails if m.state == "sent")
    answered = f"{rates['respondents']} / {rates['expected']}"
    return (
        f"<tr>{_cell(s['id'])}{_cell(s['formation'])}{_cell(local(s['start'], tz) + ' → ' + local(s['end'], tz))}"
        f"{_cell(_status(s))}{_cell(str(len(proof.learners)), css='num')}{_cell(str(sent), css='num')}"
        f"{_cell(answered, css='num')}"
        f"{_cell(_pct(rates['rate']), rates['rate'] is None, 'num')}{_cell(_mean(rates['mean_note']), css='num')}</tr>"
    )


def _status(session: dict[str, Any]) -> str:
    if session["status"] == "cancelled":
        return "annulée" + (f" ({session['cancel_reason']})" if session.get("cancel_reason") else "")
    return "prévue"


def _section(proof: SessionProof, audit: Audit, tz: Any) -> str:
    s, rates = proof.session, audit.rates([proof])
    cancelled = s["status"] == "cancelled"
    learners = "".join(_learner(lp, tz, cancelled) for lp in proof.learners) or "<p>Aucun apprenant inscrit.</p>"
    return f"""<section><h2>Session {escape(s["id"])} – {escape(s["formation"])}</h2>
<dl><dt>Dates</dt><dd>du {escape(local(s["start"], tz))} au {escape(local(s["end"], tz))}</dd>
<dt>Lieu</dt><dd>{escape(s["lieu"] or "—")}</dd><dt>Formateur</dt><dd>{escape(s["formateur"] or "—")}</dd>
<dt>Statut</dt><dd>{escape(_status(s))}</dd>
<dt>Évaluations</dt><dd>{rates["respondents"]} réponse(s) sur {rates["expected"]} attendue(s),
taux {_pct(rates["rate"])}, note moyenne {_mean(rates["mean_note"])}</dd></dl>
{learners}</section>
"""


def _learner(lp: Any, tz: Any, cancelled: bool = False) -> str:
    evaluation = (
        f"évaluation complétée le {local(lp.evaluated_at, tz)}" + ("" if lp.note is None else f", note {lp.note:g}/10")
        if lp.evaluated_at
        else ("évaluation sans objet (session annulée)" if cancelled else "évaluation non complétée")
    )
    who = f"<b>{escape(lp.name)}</b> &lt;{escape(lp.email)}&gt;" if lp.name else f"<b>{escape(lp.email)}</b>"
    head = f"<p>{who} – présence : {escape(ATTENDANCE.get(lp.attendance, 'non renseignée'))} – {escape(evaluation)}</p>"
    if not lp.mails:
        return head + f'<p class="missing">Aucun mail envoyé à cet apprenant pour cette session ({MISSING}).</p>'
    rows = "".join(_mail_row(m, tz) for m in lp.mails)
    return head + (
        "<table><thead><tr><th>Mail</th><th>Mis en file</th><th>Envoyé</th><th>Message-ID</th>"
        "<th>Réponse du serveur</th><th>Distribution</th><th>Ouvert</th><th>Cliqué</th><th>Pièces jointes</th>"
        f"</tr></thead><tbody>{rows}</tbody></table>"
    )


def _mail_row(m: MailProof, tz: Any) -> str:
    files = "; ".join(f"{a['name']} (SHA-256 {a['sha256']})" for a in m.attachments) or "aucune"
    sent = local(m.sent_at, tz)
    return (
        f"<tr>{_cell(m.template)}{_cell(local(m.queued_at, tz) or MISSING, m.queued_at is None)}"
        f"{_cell(sent or (MISSING if m.state in ('failed', 'cancelled') else 'pas encore'), not sent)}"
        f"{_cell(m.message_id, css='small')}{_cell(m.answer, m.answer == MISSING)}"
        f"{_cell(m.delivery, m.delivery == MISSING or m.delivery.startswith('rebond'))}"
        f"{_cell(local(m.opened, tz) or 'non')}{_cell(local(m.clicked, tz) or 'non')}{_cell(files, css='small')}</tr>"
    )
