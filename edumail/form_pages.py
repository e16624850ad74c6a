"""The French pages of the public forms, the preference centre and the unsubscribe page (SPEC 17).

Plain HTML and inline CSS: no script, no font or image from elsewhere, no
cookie. Every value from a file, the store or a post is escaped. Labels are tied
to their inputs, errors are announced (role="alert") and tied to their field
(aria-describedby), and the layout holds from 320 px to a desktop.
"""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING

from edumail.forms import AUTOCOMPLETE, HONEYPOT, Form
from edumail.typography import elide, french_spacing_html

if TYPE_CHECKING:
    from edumail.forms import Outcome
    from edumail.preferences import View

STYLE = """
*{box-sizing:border-box}
body{margin:0;background:#f4f5f7;color:#1f2933;font-family:-apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif}
main{max-width:520px;margin:32px auto;background:#fff;border-radius:8px;padding:28px}
main{box-shadow:0 1px 3px rgba(0,0,0,.1)}
@media (max-width:560px){main{margin:12px;padding:20px}}
h1{font-size:1.35em;line-height:1.3;margin:0 0 12px}p{line-height:1.5;margin:0 0 14px}
.centre{color:#52606d;font-size:.9em;margin-bottom:16px}
.field{margin:0 0 16px}label{display:block;font-weight:600;margin:0 0 6px}
input[type=text],input[type=email]{width:100%;font-size:1em;padding:10px 12px}
input[type=text],input[type=email]{border:1px solid #7b8794;border-radius:6px}
input:focus,button:focus{outline:3px solid #f0b429;outline-offset:2px}
.check{display:flex;gap:10px;align-items:flex-start;margin:0 0 14px}
.check input{width:20px;height:20px;margin:2px 0 0;flex:none}.check label{font-weight:400;margin:0;line-height:1.45}
fieldset{border:0;margin:0 0 16px;padding:0}legend{font-weight:600;margin:0 0 8px;padding:0}
button{background:#1f5fbf;color:#fff;border:0;border-radius:6px;padding:12px 20px;font-size:1em;cursor:pointer}
button.secondary{background:#fff;color:#1f5fbf;border:2px solid #1f5fbf}
.actions{display:flex;flex-wrap:wrap;gap:10px;margin:8px 0 16px}form{margin:0 0 16px}.actions form{margin:0}
.error{color:#b3261e;font-size:.95em;margin:6px 0 0}[aria-invalid=true]{border-color:#b3261e}
.summary{border:2px solid #b3261e;border-radius:6px;padding:12px 14px;margin:0 0 18px}
.summary ul{margin:6px 0 0;padding-left:20px}
.note{color:#52606d;font-size:.9em}.ok{color:#1b7f3b;font-weight:600}
.hp{position:absolute!important;left:-10000px;top:auto;width:1px;height:1px;overflow:hidden}
"""
PRIVACY = (
    "Vos données servent uniquement {centre_a} pour vous écrire. Chaque e-mail contient un lien pour vous "
    "désinscrire ou choisir ce que vous recevez."
)


def _privacy(centre: str) -> str:
    return PRIVACY.format(centre_a=elide(centre, "à"))


def page(centre: str, title: str, body: str, *, robots: bool = False) -> str:
    """A complete page in French around `body` (already escaped HTML)."""
    meta = "" if robots else '<meta name="robots" content="noindex">'
    body = french_spacing_html(body)
    return (
        '<!doctype html>\n<html lang="fr"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"{meta}<title>{escape(title)} – {escape(centre)}</title><style>{STYLE}</style></head>"
        f'<body><main><p class="centre">{escape(centre)}</p><h1>{escape(title)}</h1>{body}</main></body></html>\n'
    )


# --- the public form -------------------------------------------------------------


def form_fields(form: Form, outcome: Outcome | None = None) -> str:
    """The inputs, honeypot, topics and consent box: shared by the page and the snippet."""
    values = outcome.values if outcome else {}
    errors = outcome.errors if outcome else {}
    parts = []
    for f in form.fields:
        ident = f"f-{f.name}"
        kind = "email" if f.name == "email" else "text"
        attrs = [f'id="{ident}"', f'name="{f.name}"', f'type="{kind}"', 'maxlength="500"']
        if f.name in AUTOCOMPLETE:
            attrs.append(f'autocomplete="{AUTOCOMPLETE[f.name]}"')
        if f.required:
            attrs.append('required aria-required="true"')
        if values.get(f.name):
            attrs.append(f'value="{escape(values[f.name])}"')
        mark = " (obligatoire)" if f.required else ""
        parts.append(
            f'<div class="field"><label for="{ident}">{escape(f.label)}{mark}</label>'
            f"<input {' '.join(attrs)}{_error_attrs(ident, errors.get(f.name))}>"
            f"{_error(ident, errors.get(f.name))}</div>"
        )
    parts.append(
        f'<div class="hp" aria-hidden="true"><label for="f-{HONEYPOT}">Laissez ce champ vide</label>'
        f'<input id="f-{HONEYPOT}" name="{HONEYPOT}" type="text" tabindex="-1" autocomplete="off"></div>'
    )
    if len(form.topics) > 1:
        chosen = set(outcome.chosen) if outcome else set()
        boxes = "".join(
            _checkbox(f"topic_{t}", f"f-topic-{t}", form.labels.get(t, t), t in chosen) for t in form.topics
        )
        parts.append(
            f"<fieldset{_error_attrs('f-topics', errors.get('topics'))}><legend>Ce qui vous intéresse</legend>"
            f"{boxes}{_error('f-topics', errors.get('topics'))}</fieldset>"
        )
    parts.append(
        _checkbox("consent", "f-consent", form.consent, False, required=True, error=errors.get("consent"))
        + _error("f-consent", errors.get("consent"))
    )
    return "\n".join(parts)


def _checkbox(
    name: str, ident: str, label: str, checked: bool, *, required: bool = False, error: str | None = None
) -> str:
    attrs = f'id="{ident}" name="{name}" type="checkbox" value="oui"'
    attrs += " checked" if checked else ""
    attrs += " required" if required else ""
    box = f"<input {attrs}{_error_attrs(ident, error)}>"
    return f'<div class="check">{box}<label for="{ident}">{escape(label)}</label></div>'


def _error_attrs(ident: str, error: str | None) -> str:
    return f' aria-invalid="true" aria-describedby="{ident}-error"' if error else ""


def _error(ident: str, error: str | None) -> str:
    return f'<p class="error" id="{ident}-error">{escape(error)}</p>' if error else ""


def form_page(centre: str, form: Form, action: str, outcome: Outcome | None = None) -> str:
    """GET /f/NAME, or the same page again with the errors of a post."""
    summary = ""
    if outcome and outcome.errors:
        items = "".join(f"<li>{escape(message)}</li>" for message in outcome.errors.values())
        summary = (
            '<div class="summary" role="alert" tabindex="-1"><p><b>Le formulaire n’a pas pu être envoyé :</b></p>'
            f"<ul>{items}</ul></div>"
        )
    intro = f"<p>{escape(form.intro)}</p>" if form.intro else ""
    body = (
        f'{summary}{intro}<form method="post" action="{escape(action)}" accept-charset="utf-8">'
        f"{form_fields(form, outcome)}"
        f'<p class="note">{escape(_privacy(centre))}</p>'
        f'<button type="submit">{escape(form.button)}</button></form>'
    )
    return page(centre, form.title, body, robots=True)


def thanks_page(centre: str, form: Form) -> str:
    body = f'<p class="ok" role="status">{escape(form.thanks)}</p>'
    return page(centre, form.title, body)


def calm_page(centre: str, title: str, message: str) -> str:
    """Too many posts, a body too large, a form that is not there: one sentence, no detail."""
    return page(centre, title, f"<p>{escape(message)}</p>")


def snippet(form: Form, action: str, centre: str) -> str:
    """The HTML to paste into another site: the same form, posting to `edumail serve`."""
    intro = f"<p>{escape(form.intro)}</p>\n" if form.intro else ""
    return (
        f"<!-- edumail: formulaire « {escape(form.name)} » ; les réponses vont à {escape(action)} -->\n"
        f'<form class="edumail-form" method="post" action="{escape(action)}" accept-charset="utf-8">\n'
        f"<style>.edumail-form .hp{{position:absolute!important;left:-10000px;width:1px;height:1px;"
        "overflow:hidden}.edumail-form .field label{display:block}</style>\n"
        f"{intro}{form_fields(form)}\n"
        f"<p><small>{escape(_privacy(centre))}</small></p>\n"
        f'<button type="submit">{escape(form.button)}</button>\n</form>\n'
    )


# --- the unsubscribe page and the preference centre -------------------------------------

NEWS_WORDING = "Je souhaite recevoir les actualités et offres de formation par e-mail."
EVERYTHING_WORDING = "Ne plus rien recevoir de nos actualités et offres"
_SERVICE_NOTE = (
    '<p class="note">Les e-mails liés à vos inscriptions (convocations, attestations) continueront de vous '
    "parvenir.</p>"
)


def _masked(email: str) -> str:
    local, _, domain = (email or "").partition("@")
    return f"{local[:1]}•••@{domain}" if domain else ""


def _button_form(fields: dict[str, str], label: str, secondary: bool = False) -> str:
    hidden = "".join(f'<input type="hidden" name="{escape(k)}" value="{escape(v)}">' for k, v in fields.items())
    kind = ' class="secondary"' if secondary else ""
    return f'<form method="post">{hidden}<button type="submit"{kind}>{escape(label)}</button></form>'


def _undo(view: View) -> str:
    if view.undo is None:
        return ""
    return '<p class="note">Une erreur ? Vous pouvez annuler pendant 30 jours.</p>' + _button_form(
        {"action": "undo"}, "Annuler ma désinscription", secondary=True
    )


def unsubscribe_page(centre: str, view: View, labels: dict[str, str], preferences: str = "") -> str:
    """GET /u/TOKEN: only this topic or everything (one button without topic); an undo when already done."""
    who = f" à l’adresse {escape(_masked(view.email))}" if _masked(view.email) else ""
    link = f'<p class="note"><a href="{escape(preferences)}">Choisir ce que je reçois</a></p>' if preferences else ""
    if not view.receives:
        body = '<p class="ok" role="status">Vous êtes déjà désinscrit(e).</p>' + _undo(view) + _SERVICE_NOTE
        return page(centre, "Désinscription", body)
    if view.topic and not view.topics.get(view.topic, True):
        label = labels[view.topic]
        body = (
            f'<p class="ok" role="status">Vous ne recevez plus « {escape(label)} ».</p>{_undo(view)}'
            f'<div class="actions">{_button_form({"scope": "all"}, "Ne plus rien recevoir")}</div>{link}'
        )
        return page(centre, "Désinscription", body)
    if view.topic:
        label = labels[view.topic]
        body = (
            f"<p>Cet e-mail fait partie de « <b>{escape(label)}</b> »{who}. Que souhaitez-vous ?</p>"
            '<div class="actions">'
            + _button_form({"scope": "topic"}, f"Ne plus recevoir « {label} »")
            + _button_form({"scope": "all"}, "Ne plus rien recevoir", secondary=True)
            + f"</div>{_SERVICE_NOTE}{link}"
        )
        return page(centre, "Se désinscrire", body)
    body = (
        f"<p>Vous ne recevrez plus les actualités et offres <b>{escape(elide(centre))}</b>{who}.</p>"
        + _SERVICE_NOTE
        + '<form method="post"><input type="hidden" name="confirm" value="yes">'
        '<button type="submit">Confirmer la désinscription</button></form>' + link
    )
    return page(centre, "Se désinscrire", body)


def unsubscribed_page(centre: str, view: View, labels: dict[str, str], scope: str) -> str:
    """After POST /u/TOKEN: what was done, and the undo."""
    if scope == "topic" and view.topic:
        first = f"C’est fait : vous ne recevrez plus « {labels[view.topic]} »."
        rest = "<p>Vous continuerez de recevoir nos autres envois.</p>"
    else:
        first = "C’est fait : vous êtes désinscrit(e)."
        rest = f"<p>Vous ne recevrez plus les actualités et offres <b>{escape(elide(centre))}</b>.</p>"
    body = f'<p class="ok" role="status">{escape(first)}</p>{rest}{_undo(view)}{_SERVICE_NOTE}'
    return page(centre, "Désinscription", body)


def undone_page(centre: str, done: bool) -> str:
    text = (
        "Votre désinscription est annulée : vous recevrez de nouveau nos e-mails."
        if done
        else "Il n’y a plus de désinscription à annuler (plus de 30 jours, ou vos choix ont changé depuis)."
    )
    return page(centre, "Désinscription annulée" if done else "Désinscription", f'<p role="status">{escape(text)}</p>')


def preferences_page(centre: str, view: View, labels: dict[str, str], saved: bool) -> str:
    """GET/POST /p/TOKEN: one box per topic plus "everything"; a single box when there are no topics."""
    state = "Vous recevez nos actualités." if view.receives else "Vous ne recevez pas nos actualités."
    head = ('<p class="ok" role="status">Vos préférences sont enregistrées.</p>' if saved else "") + (
        f"<p>{escape(_masked(view.email))} — {state}</p>"
    )
    if not labels:
        boxes = (
            '<div class="check"><input id="p-news" type="checkbox" name="news" value="on"'
            + (" checked" if view.receives else "")
            + f'><label for="p-news">{escape(NEWS_WORDING)}</label></div>'
        )
    else:
        boxes = "".join(
            _checkbox(f"topic_{name}", f"p-topic-{name}", label, view.receives and view.topics.get(name, True))
            for name, label in labels.items()
        )
        boxes = f"<fieldset><legend>Je souhaite recevoir par e-mail :</legend>{boxes}</fieldset>"
        boxes += _checkbox("everything", "p-everything", EVERYTHING_WORDING, False)
    body = f'{head}<form method="post">{boxes}{_SERVICE_NOTE}<button type="submit">Enregistrer</button></form>'
    return page(centre, "Vos préférences", body)
