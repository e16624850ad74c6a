"""The staff alert a `notify:` step sends: in French, about the contact as the step left it.

The alert names the sequence by its description (what the centre wrote it
for), says which step of how many, what the step did, and shows the
contact's stage, tags and fields after the step's own actions.
"""

from __future__ import annotations

import json
from typing import Any

from edumail.contacts import display_name
from edumail.sequences import Sequence, Step
from edumail.typography import french_spacing

_CORE = ("email", "first_name", "last_name", "stage", "tags", "consent", "timezone")


def alert(
    sequence: Sequence,
    step: Step,
    contact: dict[str, Any],
    tags: list[str],
    event_data: dict[str, Any],
    mail_queued: bool,
) -> dict[str, str]:
    """`{"subject", "body"}` of the alert (the body is plain text; compose makes its HTML)."""
    who = display_name(contact) or contact["email"]
    about = sequence.description.strip() or sequence.name
    count = len(sequence.steps)
    lines = [
        f"{who} <{contact['email']}> vient de passer l'étape {step.index + 1} sur {count} "
        f"de la séquence « {about} » ({sequence.name}).",
        "",
    ]
    did = _what_it_did(step, mail_queued)
    if did:
        lines += ["Ce que l'étape a fait :", *(f"  - {item}" for item in did), ""]
    lines.append("Le contact après cette étape :")
    lines.append(f"  Stade : {contact.get('stage') or 'aucun'}")
    lines.append(f"  Étiquettes : {', '.join(sorted(tags)) or 'aucune'}")
    fields = json.loads(contact.get("fields") or "{}") if isinstance(contact.get("fields"), str) else {}
    for key, value in sorted(fields.items()):
        if key not in _CORE:
            lines.append(f"  {key} : {value}")
    if event_data:
        lines += ["", "Données de l'événement déclencheur :"]
        lines += [f"  {key} : {value}" for key, value in sorted(event_data.items())]
    lines += ["", f"Tout son historique : edumail contacts show {contact['email']}"]
    subject = f"[edumail] {who} : {about}"
    return {"subject": french_spacing(subject), "body": french_spacing("\n".join(lines))}


def _what_it_did(step: Step, mail_queued: bool) -> list[str]:
    done = []
    for action in step.actions:
        kind, value = action.kind, action.value
        if kind == "stage":
            done.append(f"stade passé à {value}")
        elif kind in ("tag", "untag"):
            what = "étiquette" if len(value) == 1 else "étiquettes"
            verb = ("ajoutée" if kind == "tag" else "retirée") + ("s" if len(value) > 1 else "")
            done.append(f"{what} {verb} : {', '.join(value)}")
        elif kind == "set":
            done.append("champs renseignés : " + ", ".join(f"{k} = {v}" for k, v in dict(value).items()))
        elif kind == "send":
            done.append(f"e-mail « {value} » " + ("mis en file d'envoi" if mail_queued else "non envoyé"))
    return done
