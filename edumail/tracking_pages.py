"""The French pages the tracking server shows: confirmation, already unsubscribed, link not found.

(The unsubscribe and preference pages with topics are in form_pages.py.)

Plain, self-contained HTML (no script, no external resource, no cookie); every
value from the store or settings is escaped.
"""

from __future__ import annotations

from html import escape

from edumail.typography import elide, french_spacing_html

_SERVICE_NOTE = (
    '<p class="note">Les e-mails liés à vos inscriptions (convocations, attestations) '
    "continueront de vous parvenir.</p>"
)
CONFIRM_WORDING = "Je confirme vouloir recevoir les actualités et offres de formation par e-mail."

_STYLE = """
body{margin:0;padding:0 16px;background:#f4f5f7;color:#1f2933}
body{font-family:-apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif}
main{max-width:544px;margin:48px auto;background:#fff;border-radius:8px;padding:32px;box-sizing:border-box}
@media (max-width:480px){main{margin:16px auto;padding:24px 20px}}
main{box-shadow:0 1px 3px rgba(0,0,0,.1)}
h1{font-size:1.3em;margin:0 0 16px}p{line-height:1.5}.centre{color:#52606d;font-size:.9em;margin-bottom:24px}
button{background:#1f5fbf;color:#fff;border:0;border-radius:6px;padding:12px 20px;font-size:1em;cursor:pointer}
label{display:block;margin:16px 0;line-height:1.4}.note{color:#52606d;font-size:.9em}.ok{color:#1b7f3b}
"""


def mask(email: str | None) -> str:
    """j•••@centre.example: enough for the person to recognise, little for anyone else."""
    local, _, domain = (email or "").partition("@")
    if not domain:
        return ""
    return f"{local[:1]}•••@{domain}"


def _layout(centre: str, title: str, body: str) -> str:
    body = french_spacing_html(body)
    return (
        '<!doctype html>\n<html lang="fr"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="robots" content="noindex">'
        f"<title>{escape(title)} – {escape(centre)}</title><style>{_STYLE}</style></head>"
        f'<body><main><div class="centre">{escape(centre)}</div><h1>{escape(title)}</h1>{body}</main></body></html>\n'
    )


def unsubscribed(centre: str, already: bool = False) -> str:
    first = "Vous êtes déjà désinscrit(e)." if already else "C’est fait : vous êtes désinscrit(e)."
    body = (
        f'<p class="ok">{first}</p>'
        f"<p>Vous ne recevrez plus les actualités et offres <b>{escape(elide(centre))}</b>.</p>" + _SERVICE_NOTE
    )
    return _layout(centre, "Désinscription", body)


def confirm_form(centre: str, masked: str) -> str:
    body = (
        f"<p>Pour recevoir les actualités <b>{escape(elide(centre))}</b>"
        f"{' à l’adresse ' + escape(masked) if masked else ''}, confirmez votre inscription.</p>"
        f'<form method="post"><p class="note">{escape(CONFIRM_WORDING)}</p>'
        '<button type="submit">Je confirme</button></form>'
    )
    return _layout(centre, "Confirmer votre inscription", body)


def confirmed(centre: str) -> str:
    body = (
        '<p class="ok">Merci, votre inscription est confirmée.</p>'
        '<p class="note">Vous pourrez vous désinscrire à tout moment grâce au lien présent dans chaque e-mail.</p>'
    )
    return _layout(centre, "Inscription confirmée", body)


def not_found(centre: str) -> str:
    body = "<p>Ce lien n’est pas valide ou n’est plus valide. Vérifiez qu’il a été copié en entier.</p>"
    return _layout(centre, "Lien introuvable", body)
