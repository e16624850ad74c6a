"""The shipped template library: every template renders, reads well in every client, and documents its data."""

from __future__ import annotations

import html as html_module
import re
from datetime import UTC, datetime
from email import message_from_bytes
from email.policy import default as default_policy
from pathlib import Path

import pytest

from edumail import message
from edumail.render import TemplateLibrary, render
from edumail.render_check import (
    check_templates,
    required_event_fields,
    sample_contact,
    sample_event,
    sample_session,
    variables,
)
from edumail.settings import Sender, Settings

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ROOT / "templates"
NOW = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
UNSUBSCRIBE = "https://mail.centre.example/u/TOKEN"
PREFERENCES = "https://mail.centre.example/p/TOKEN"
CONFIRM = "https://mail.centre.example/k/TOKEN"
SPEC_NAMES = {
    "bienvenue",
    "rappel-session",
    "relance-inscription",
    "relance-sans-reponse",
    "inactivite",
    "ressources-pedagogiques",
    "enquete-satisfaction",
    "double-optin",
    "newsletter",
    "confirmation-inscription",
    "convocation",
    "changement-de-date",
    "session-annulee",
    "evaluation-a-chaud",
    "evaluation-a-froid",
    "absence",
}
SESSION = sample_session()


@pytest.fixture(scope="module")
def library() -> TemplateLibrary:
    settings = Settings(
        sender=Sender("Centre de formation Exemple", "contact@centre.example", "inscriptions@centre.example")
    )
    return TemplateLibrary(TEMPLATES, settings)


def mail(
    library: TemplateLibrary,
    name: str,
    *,
    who: dict | None = None,
    event: dict | None = None,
    session: dict | None = None,
):
    return render(
        library,
        name,
        contact=who if who is not None else sample_contact(),
        event=sample_event(name) if event is None else event,
        now=NOW,
        unsubscribe_url=UNSUBSCRIBE,
        preferences_url=PREFERENCES,
        extra={"confirm_url": CONFIRM, "session": dict(SESSION) if session is None else session},
    )


NAMES = sorted(p.stem for p in TEMPLATES.glob("*.html") if not p.name.startswith("_"))


def test_the_library_has_every_template_the_spec_names(library):
    assert SPEC_NAMES <= set(library.names())
    assert library.layouts() == ["base"]


def test_the_library_passes_check(library):
    assert check_templates(library, contact_fields=set()) == []


@pytest.mark.parametrize("name", NAMES)
def test_renders_with_the_sample_contact(library, name):
    rendered = mail(library, name)
    assert rendered.subject and rendered.preheader
    assert rendered.html.startswith("<!DOCTYPE html>")
    assert rendered.text.strip()


@pytest.mark.parametrize("name", NAMES)
def test_styles_are_inlined_and_only_media_queries_stay_in_a_style_block(library, name):
    html = mail(library, name).html
    blocks = re.findall(r"<style[^>]*>(.*?)</style>", html, re.S)
    assert blocks and all(block.strip().startswith("@media") for block in blocks)
    assert re.search(r'<p style="[^"]*font-size: 16px', html)
    assert re.search(r'<td class="content" style="[^"]*padding', html)


@pytest.mark.parametrize("name", NAMES)
def test_the_footer_has_unsubscribe_preferences_and_the_centre_name(library, name):
    rendered = mail(library, name)
    assert f'href="{UNSUBSCRIBE}"' in rendered.html and f'href="{PREFERENCES}"' in rendered.html
    assert "Centre de formation Exemple" in rendered.html
    assert f"Se désinscrire ({UNSUBSCRIBE})" in rendered.text
    assert f"Gérer mes préférences ({PREFERENCES})" in rendered.text


@pytest.mark.parametrize("name", NAMES)
def test_the_layout_survives_outlook(library, name):
    html = mail(library, name).html
    assert '<table class="container" role="presentation"' in html
    for table in re.findall(r"<table\b[^>]*>", html):
        assert 'role="presentation"' in table, table
    styles = " ".join(re.findall(r'style="([^"]*)"', html))
    for forbidden in ("display: flex", "display:flex", "grid", "float", "position"):
        assert forbidden not in styles, forbidden
    assert "<script" not in html.lower() and "<form" not in html.lower()
    assert not re.search(r'href="https?://\d+\.\d+\.\d+\.\d+', html)


def _styles_of(html: str, tag: str) -> list[str]:
    return re.findall(rf'<{tag}\b[^>]*\bstyle="([^"]*)"', html)


_NONZERO = r"(?!0[;\s\"]|0px|0$)[^;\"]*[1-9]"


@pytest.mark.parametrize("name", NAMES)
def test_the_layout_is_fluid_up_to_600px_with_a_ghost_table_for_outlook(library, name):
    html = mail(library, name).html
    container = re.search(r'<table class="container"[^>]*>', html).group(0)
    assert 'width="100%"' in container
    assert re.search(r"(?<![-\w])width: 100%;", container) and "max-width: 600px" in container
    assert not re.search(r"(?<![-\w])width: ?600px", html), "no fixed 600 px wide element outside Outlook"
    ghost = re.search(r"<!--\[if mso\]><table [^>]*>", html).group(0)
    assert 'width="600"' in ghost and 'role="presentation"' in ghost


@pytest.mark.parametrize("name", NAMES)
def test_text_spacing_is_margin_and_cell_spacing_is_padding(library, name):
    """Outlook for Windows ignores padding outside table cells: <p>, <h1>, <ul> space themselves with margins."""
    html = mail(library, name).html
    for tag in ("p", "h1", "h2", "ul", "li"):
        for style in _styles_of(html, tag):
            assert not re.search(r"padding(-\w+)?:\s*" + _NONZERO, style), f"<{tag} style={style!r}>"
    assert any("margin: 0 0 16px 0" in style for style in _styles_of(html, "p"))
    for tag in ("table", "td"):
        for style in _styles_of(html, tag):
            assert not re.search(r"margin(-\w+)?:\s*" + _NONZERO, style), f"<{tag} style={style!r}>"


@pytest.mark.parametrize("name", NAMES)
def test_outlook_gets_exact_line_heights_and_96_dpi(library, name):
    html = mail(library, name).html
    for tag in ("p", "h1", "li"):
        for style in _styles_of(html, tag):
            assert "mso-line-height-rule: exactly" in style, f"<{tag} style={style!r}>"
    head = html[: html.index("</head>")]
    assert re.search(
        r"<!--\[if mso\]><xml><o:OfficeDocumentSettings>.*<o:PixelsPerInch>96</o:PixelsPerInch>.*<!\[endif\]-->",
        head,
    )


@pytest.mark.parametrize("name", NAMES)
def test_the_media_queries_come_after_the_charset(library, name):
    html = mail(library, name).html
    charset = html.index('<meta charset="utf-8">')
    assert charset < 1024, "a client looks for the charset in the first 1024 bytes"
    assert html.index("<style") > charset and html.index("@media") > charset


@pytest.mark.parametrize("name", NAMES)
def test_the_html_is_accessible(library, name):
    html = mail(library, name).html
    assert '<html lang="fr"' in html
    for image in re.findall(r"<img\b[^>]*>", html):
        assert re.search(r'\balt="', image) and "width=" in image and "height=" in image
    assert re.search(r"<h1\b|<p\b", html)
    for label in re.findall(r"<a\b[^>]*>(.*?)</a>", html, re.S):
        assert re.sub(r"<[^>]+>", "", label).strip(), "every link has a visible label"


def _luminance(hex_colour: str) -> float:
    channels = [int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


@pytest.mark.parametrize(
    ("text", "background"),
    [
        ("#1f2933", "#ffffff"),
        ("#ffffff", "#1f4e79"),
        ("#52606d", "#f4f6f8"),
        ("#1f4e79", "#f4f6f8"),
        ("#1f2933", "#f4f7fa"),
    ],
)
def test_the_layout_colours_have_sufficient_contrast(text, background):
    layout = (TEMPLATES / "layouts" / "base.html").read_text(encoding="utf-8")
    assert text in layout and background in layout
    light, dark = sorted((_luminance(text), _luminance(background)), reverse=True)
    assert (light + 0.05) / (dark + 0.05) >= 4.5


@pytest.mark.parametrize("name", NAMES)
def test_the_message_is_text_first_and_html_last(library, name):
    rendered = mail(library, name)
    headers = message.Headers()
    headers.add("From", message.mailbox("Centre", "contact@centre.example"))
    headers.text("Subject", rendered.subject)
    parsed = message_from_bytes(message.build(headers, text=rendered.text, html=rendered.html), policy=default_policy)
    assert [p.get_content_type() for p in parsed.iter_parts()] == ["text/plain", "text/html"]
    assert parsed["Subject"] == mail(library, name).subject


def test_the_session_reminder_shows_french_dates(library):
    rendered = mail(library, "rappel-session")
    assert rendered.subject == "Votre formation commence le lundi 14 décembre à 9h30"
    assert "lundi 14&nbsp;décembre&nbsp;2026&nbsp;à&nbsp;9h30" in rendered.html
    assert "Début\u00a0: lundi 14\u00a0décembre 2026\u00a0à\u00a09h30" in rendered.text
    assert "Nous vous attendons pour votre formation Excel perfectionnement." in rendered.text
    assert "12\u00a0rue de la République" in rendered.text
    assert "Revoir le programme (https://centre.example/formations/excel-perfectionnement)" in rendered.text


def test_the_session_templates_read_the_session_as_it_is_now(library):
    moved = {**SESSION, "start": "2026-12-16T09:30:00+01:00", "end": "2026-12-17T17:00:00+01:00"}
    assert (
        mail(library, "rappel-session", session=moved).subject
        == "Votre formation commence le mercredi 16 décembre à 9h30"
    )
    assert "terminée le jeudi 17\u00a0décembre 2026" in mail(library, "enquete-satisfaction", session=moved).text
    assert (
        "Session du mercredi 16\u00a0décembre 2026"
        in mail(library, "confirmation-inscription", session=moved).preheader
    )


def test_the_enrolment_confirmation_summarises_the_session(library):
    rendered = mail(library, "confirmation-inscription")
    assert rendered.subject == "Inscription confirmée : Excel perfectionnement"
    assert "lundi 14\u00a0décembre 2026" in rendered.preheader
    assert "Durée\u00a0: 2\u00a0jours (14\u00a0heures)" in rendered.text


def test_the_survey_links_to_the_survey(library):
    rendered = mail(library, "enquete-satisfaction")
    assert 'href="https://centre.example/enquete/excel-perfectionnement"' in rendered.html
    assert "Donner mon avis (https://centre.example/enquete/excel-perfectionnement)" in rendered.text


def test_the_survey_link_comes_from_the_session_else_the_enrolment_else_a_reply(library):
    bare = {k: v for k, v in SESSION.items() if k != "lien_enquete"}
    from_event = mail(library, "enquete-satisfaction", session=bare, event={"lien_enquete": "https://x.example/avis"})
    assert "Donner mon avis (https://x.example/avis)" in from_event.text
    neither = mail(library, "enquete-satisfaction", session=bare, event={})
    assert "Donner mon avis" not in neither.text and "Répondez simplement à ce message" in neither.text


def test_double_optin_links_to_the_confirmation(library):
    rendered = mail(library, "double-optin")
    assert f'href="{CONFIRM}"' in rendered.html
    assert f"Je confirme mon inscription ({CONFIRM})" in rendered.text


def test_the_newsletter_is_dated_by_now(library):
    assert mail(library, "newsletter").subject == "La lettre du Centre de formation Exemple – novembre 2026"


@pytest.mark.parametrize("name", NAMES)
def test_every_event_field_used_is_documented_at_the_top(library, name):
    used = {v.split(".")[1] for v in variables(library, name) if v.startswith("event.")}
    documented = set(library.documented_event_fields(name))
    assert used <= documented, f"{name}: document {sorted(used - documented)} in the {{# event: ... #}} comment"
    assert required_event_fields(library, name) <= documented


@pytest.mark.parametrize("name", NAMES)
def test_renders_with_only_the_required_event_data(library, name):
    sample = sample_event(name)
    sparse = {k: sample[k] for k in required_event_fields(library, name)}
    assert mail(library, name, event=sparse).text.strip()


# A hole left by an empty variable: a space or nothing before a comma, a comma opening a line or a subject.
_HOLE = re.compile(r"(?:^|\n|[ \u00a0])[,.]|,\s*[,.]|\(\s*\)")


@pytest.mark.parametrize("who", [{"email": "x@example.org"}, {"email": "x@example.org", "first_name": ""}])
@pytest.mark.parametrize("name", NAMES)
def test_reads_well_for_a_contact_without_a_first_name(library, name, who):
    rendered = mail(library, name, who=who)
    body = rendered.html.split("<body", 1)[1].split(">", 1)[1].split("</div>", 1)[1]  # after the preheader
    visible = html_module.unescape(re.sub(r"<[^>]+>", "", body))
    for part in (rendered.subject, rendered.preheader, rendered.text, visible):
        assert not _HOLE.search(part), f"{name}: {_HOLE.search(part).group(0)!r} in {part[:200]!r}"
    assert re.search(r"\b(Bonjour|Bienvenue)[,\u00a0]", rendered.text), "the greeting stands without a name"


@pytest.mark.parametrize("name", NAMES)
def test_greets_the_contact_by_first_name(library, name):
    assert re.search(r"\b(Bonjour|Bienvenue) Camille\b", mail(library, name).text)


def test_the_optional_fields_fall_back_to_sensible_french(library):
    bare = {**SESSION, "lieu": "", "formateur": ""}
    bare = {k: v for k, v in bare.items() if k not in ("duree", "lien_programme")}
    reminder = mail(library, "rappel-session", session=bare, event={}).text
    assert "Lieu\u00a0: l'adresse indiquée sur votre convocation" in reminder
    assert "Animée par" not in reminder and "Revoir le programme" not in reminder
    confirmation = mail(library, "confirmation-inscription", session=bare, event={}).text
    assert "Lieu\u00a0: communiqué sur votre convocation" in confirmation and "Durée" not in confirmation


def test_service_templates_read_the_session_not_the_event(library):
    for name in ("rappel-session", "confirmation-inscription", "enquete-satisfaction"):
        assert required_event_fields(library, name) == set()
        assert {"session.formation", "session.start"} & variables(library, name)
    assert required_event_fields(library, "bienvenue") == set()


def _text_nodes(html: str) -> str:
    body = html.split("<body", 1)[1]
    body = re.sub(r"<!--.*?-->|<style\b.*?</style>", "", body, flags=re.S)
    return html_module.unescape(re.sub(r"<[^>]+>", "", body))


@pytest.mark.parametrize("name", NAMES)
def test_french_punctuation_never_starts_a_line(library, name):
    """A no-break space before : ; ! ? (an ordinary one lets the sign wrap to the next line alone)."""
    rendered = mail(library, name)
    for part in (rendered.text, rendered.preheader, _text_nodes(rendered.html)):
        found = re.search(r".{0,30}[ \t\n][:;!?»]", part)
        assert found is None, f"{name}: {found.group(0)!r}"
        assert not re.search(r"«[ \t\n]", part)


@pytest.mark.parametrize("name", NAMES)
def test_french_punctuation_with_an_empty_first_name(library, name):
    text = mail(library, name, who={"email": "x@example.org"}).text
    assert not re.search(r"[ \t\n][:;!?]", text)


def test_labels_dates_and_numbers_hold_together(library):
    html = mail(library, "rappel-session").html
    assert "Animée par&nbsp;:" in html
    assert "14&nbsp;décembre" in html and "à&nbsp;9h30" in html
    assert "12&nbsp;rue de la République, 69002&nbsp;Lyon" in html


@pytest.mark.parametrize(
    ("centre", "footer", "newsletter", "welcome"),
    [
        ("Centre de formation Exemple", "message du Centre de formation Exemple", "La lettre du Centre", "au Centre"),
        ("Alpes Compétences", "message d'Alpes Compétences", "La lettre d'Alpes Compétences", "à Alpes Compétences"),
        ("Formapro", "message de Formapro", "La lettre de Formapro", "à Formapro"),
        ("La Maison des Langues", "message de la Maison des Langues", "La lettre de la Maison", "à la Maison"),
        ("Institut Pasteur", "message de l'Institut Pasteur", "La lettre de l'Institut", "à l'Institut"),
    ],
)
def test_the_centre_name_takes_de_du_or_d_apostrophe(centre, footer, newsletter, welcome):
    library = TemplateLibrary(TEMPLATES, Settings(sender=Sender(centre, "contact@centre.example")))
    assert footer in mail(library, "bienvenue").text
    assert mail(library, "newsletter").subject.startswith(newsletter)
    assert mail(library, "bienvenue").subject.startswith(f"Bienvenue {welcome}")
    assert f"portez {welcome}" in mail(library, "bienvenue").text
    assert f"les informations {footer.removeprefix('message ')}" in mail(library, "double-optin").text


@pytest.mark.parametrize("name", NAMES)
def test_every_template_has_one_title(library, name):
    assert len(re.findall(r"<h1\b", mail(library, name).html)) == 1


def test_the_convocation_carries_the_programme_the_rules_and_a_named_convocation(library):
    rendered = mail(library, "convocation")
    assert rendered.attachments == ("programme.pdf", "reglement-interieur.pdf")
    assert rendered.subject == "Votre convocation : Excel perfectionnement, le lundi 14 décembre"
    assert "Début\u00a0: lundi 14\u00a0décembre 2026\u00a0à\u00a09h30" in rendered.text
    named = mail(library, "convocation", session={**SESSION, "convocation": "convocations/EXCEL-2026-12-LYON"})
    assert named.attachments == (
        "programme.pdf",
        "reglement-interieur.pdf",
        "convocations/EXCEL-2026-12-LYON/camille.martin@example.org.pdf",
    )
    assert "votre convocation nominative" in named.text


def test_the_library_attachments_ship_with_it():
    for name in ("programme.pdf", "reglement-interieur.pdf"):
        assert (ROOT / "files" / name).read_bytes().startswith(b"%PDF-")


def test_the_cancellation_notice_gives_the_reason(library):
    cancelled = {**SESSION, "status": "cancelled", "cancel_reason": "formatrice malade"}
    rendered = mail(library, "session-annulee", session=cancelled, event={"session": SESSION["id"]})
    assert "Motif\u00a0: formatrice malade." in rendered.text
    assert "prévue le lundi 14\u00a0décembre 2026\u00a0à\u00a09h30 n'aura pas lieu" in rendered.text


def test_the_date_change_shows_the_old_and_the_new_dates(library):
    event = {"session": SESSION["id"], "field": "start", "from": "2026-12-07T08:30:00+00:00"}
    rendered = mail(library, "changement-de-date", event=event)
    assert "prévue le lundi 7\u00a0décembre 2026, a été déplacée" in rendered.text
    assert rendered.preheader == "Elle commence désormais le lundi 14\u00a0décembre à\u00a09h30"


def test_the_evaluations_link_to_the_session_questionnaire(library):
    hot = mail(library, "evaluation-a-chaud", session={**SESSION, "lien_evaluation": "https://q.example/chaud"})
    assert 'href="https://q.example/chaud"' in hot.html
    cold = mail(library, "evaluation-a-froid", session={**SESSION, "lien_evaluation_froid": "https://q.example/f"})
    assert 'href="https://q.example/f"' in cold.html
    bare = {k: v for k, v in SESSION.items() if not k.startswith("lien_evaluation")}
    assert "Répondez simplement à ce message" in mail(library, "evaluation-a-chaud", session=bare).text
