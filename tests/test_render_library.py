"""The shipped template library: every template renders, reads well in every client, and documents its data."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email import message_from_bytes
from email.policy import default as default_policy
from pathlib import Path

import pytest

from edumail import message
from edumail.render import TemplateLibrary, render
from edumail.render_check import check_templates, required_event_fields, sample_contact, sample_event, variables
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
}


@pytest.fixture(scope="module")
def library() -> TemplateLibrary:
    settings = Settings(
        sender=Sender("Centre de formation Exemple", "contact@centre.example", "inscriptions@centre.example")
    )
    return TemplateLibrary(TEMPLATES, settings)


def mail(library: TemplateLibrary, name: str, *, who: dict | None = None, event: dict | None = None):
    return render(
        library,
        name,
        contact=who if who is not None else sample_contact(),
        event=sample_event(name) if event is None else event,
        now=NOW,
        unsubscribe_url=UNSUBSCRIBE,
        preferences_url=PREFERENCES,
        extra={"confirm_url": CONFIRM},
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
    assert '<table class="container" role="presentation"' in html and 'width="600"' in html
    for table in re.findall(r"<table\b[^>]*>", html):
        assert 'role="presentation"' in table, table
    styles = " ".join(re.findall(r'style="([^"]*)"', html))
    for forbidden in ("display: flex", "display:flex", "grid", "float", "position"):
        assert forbidden not in styles, forbidden
    assert not re.search(r"margin(-\w+)?:\s*(?!0[;\s\"]|0px)[^;\"]*[1-9]", styles), "padding, not margin"
    assert "<script" not in html.lower() and "<form" not in html.lower()
    assert not re.search(r'href="https?://\d+\.\d+\.\d+\.\d+', html)


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
    assert rendered.subject == "Votre formation commence le mardi 1 décembre à 9h00"
    assert "mardi 1 décembre 2026 à 9h00" in rendered.html
    assert "Début : mardi 1 décembre 2026 à 9h00" in rendered.text
    assert "Excel : tableaux croisés dynamiques" in rendered.text
    assert "12 rue de la République" in rendered.text


def test_the_enrolment_confirmation_summarises_the_session(library):
    rendered = mail(library, "confirmation-inscription")
    assert rendered.subject == "Inscription confirmée : Excel : tableaux croisés dynamiques"
    assert "mardi 1 décembre 2026" in rendered.preheader


def test_the_survey_links_to_the_survey(library):
    rendered = mail(library, "enquete-satisfaction")
    assert 'href="https://centre.example/enquete/excel-tcd"' in rendered.html
    assert "Donner mon avis (https://centre.example/enquete/excel-tcd)" in rendered.text


def test_double_optin_links_to_the_confirmation(library):
    rendered = mail(library, "double-optin")
    assert f'href="{CONFIRM}"' in rendered.html
    assert f"Je confirme mon inscription ({CONFIRM})" in rendered.text


def test_the_newsletter_is_dated_by_now(library):
    assert mail(library, "newsletter").subject == "La lettre de Centre de formation Exemple – novembre 2026"


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


@pytest.mark.parametrize("name", NAMES)
def test_renders_for_a_contact_without_a_first_name(library, name):
    rendered = mail(library, name, who={"email": "x@example.org"})
    assert " ," not in rendered.text and "Bonjour," in rendered.text or "Bienvenue !" in rendered.text


def test_the_optional_fields_fall_back_to_sensible_french(library):
    event = {"formation": "Word", "session_start": "2026-12-01T09:00"}
    assert "Lieu : l'adresse indiquée sur votre convocation" in mail(library, "rappel-session", event=event).text
    assert (
        "Votre avis sur la formation que vous avez suivie"
        == mail(library, "enquete-satisfaction", event={"lien_enquete": "https://x.example"}).subject
    )


def test_service_templates_need_their_session_data(library):
    assert required_event_fields(library, "rappel-session") == {"formation", "session_start"}
    assert required_event_fields(library, "confirmation-inscription") == {"formation", "session_start"}
    assert required_event_fields(library, "bienvenue") == set()
