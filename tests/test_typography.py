"""French typography: no-break spaces in text (never in markup), and de/du/d' before a name."""

from __future__ import annotations

import pytest

from edumail.typography import NBSP, elide, french_spacing, french_spacing_html, tie_date


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Lieu : Lyon", "Lieu\u00a0: Lyon"),
        ("Et maintenant ?", "Et maintenant\u00a0?"),
        ("Bienvenue !", "Bienvenue\u00a0!"),
        ("la session ; les dates", "la session\u00a0; les dates"),
        ("« Excel »", "«\u00a0Excel\u00a0»"),
        ("1 200 €", "1\u00a0200\u00a0€"),
        ("15 %", "15\u00a0%"),
        ("environ 5 minutes", "environ 5\u00a0minutes"),
        ("à 9h00", "à\u00a09h00"),
        ("1, 2 et 3 jours", "1, 2\u00a0et 3\u00a0jours"),
    ],
)
def test_french_spacing(text, expected):
    assert french_spacing(text) == expected


@pytest.mark.parametrize(
    "text",
    ["https://centre.example/?a=1 ok", "10:30", "Bonjour!", "A4 papier", "Lieu\u00a0: Lyon"],
)
def test_french_spacing_leaves_alone_what_has_no_space_to_fix(text):
    assert french_spacing(text) == text


def test_french_spacing_html_touches_text_only():
    page = (
        '<style>a { color: red; } p :hover{}</style><p class="a ?" title="x : y">Lieu : Lyon</p>'
        "<!--[if mso]><xml> : </xml><![endif]--><b>Excel</b> : avancé"
    )
    assert french_spacing_html(page) == (
        '<style>a { color: red; } p :hover{}</style><p class="a ?" title="x : y">Lieu\u00a0: Lyon</p>'
        "<!--[if mso]><xml> : </xml><![endif]--><b>Excel</b>\u00a0: avancé"
    )


def test_a_date_holds_together_but_may_break_after_the_weekday():
    assert tie_date("mardi 1 décembre 2026 à 9h00") == f"mardi 1{NBSP}décembre{NBSP}2026{NBSP}à{NBSP}9h00"
    assert tie_date("1 décembre 2026") == f"1{NBSP}décembre{NBSP}2026"
    assert tie_date("décembre 2026") == f"décembre{NBSP}2026"


@pytest.mark.parametrize(
    ("name", "de", "a"),
    [
        ("Alpes Compétences", "d'Alpes Compétences", "à Alpes Compétences"),
        ("Centre de formation Exemple", "du Centre de formation Exemple", "au Centre de formation Exemple"),
        ("Formapro", "de Formapro", "à Formapro"),
        ("Le Centre Rhône", "du Centre Rhône", "au Centre Rhône"),
        ("La Maison des Langues", "de la Maison des Langues", "à la Maison des Langues"),
        ("Maison de l'emploi", "de la Maison de l'emploi", "à la Maison de l'emploi"),
        ("Les Ateliers du Code", "des Ateliers du Code", "aux Ateliers du Code"),
        ("L'Atelier", "de l'Atelier", "à l'Atelier"),
        ("L’Atelier", "de l'Atelier", "à l'Atelier"),
        ("Institut Pasteur", "de l'Institut Pasteur", "à l'Institut Pasteur"),
        ("École des Cadres", "de l'École des Cadres", "à l'École des Cadres"),
        ("GRETA Lyon", "du GRETA Lyon", "au GRETA Lyon"),
        ("Espace Formation", "de l'Espace Formation", "à l'Espace Formation"),
        ("  Alpes   Compétences ", "d'Alpes Compétences", "à Alpes Compétences"),
    ],
)
def test_elide(name, de, a):
    assert elide(name) == de
    assert elide(name, "à") == a


def test_elide_refuses_another_preposition():
    with pytest.raises(ValueError, match="'de' or 'à'"):
        elide("Formapro", "pour")


def test_the_pages_a_person_sees_elide_the_centre_name_and_space_french_punctuation():
    from edumail import form_pages, tracking_pages
    from edumail.preferences import View

    confirm = tracking_pages.confirm_form("Centre de formation Exemple", "c•••@example.org")
    assert "les actualités <b>du Centre de formation Exemple</b>" in confirm
    view = View("camille@example.org", True, None, {})
    page = form_pages.unsubscribe_page("Alpes Compétences", view, {})
    assert "offres <b>d&#x27;Alpes Compétences</b>" in page
    done = form_pages.unsubscribed_page("Alpes Compétences", view, {}, "all")
    assert "C’est fait\u00a0: vous êtes désinscrit(e)." in done


def test_the_rules_skipped_where_their_text_cannot_be_change_nothing():
    """french_spacing runs each rule only where a substring test says it can match, and checks the start of
    a word in Python rather than with a lookbehind: on any text it must give what the four rules, written
    as plain regular expressions and always run, give (random texts built from what the rules look at)."""
    import random
    import re

    from edumail import typography as t

    before_punctuation = re.compile(r"[ \t]+(?=[:;!?»])")
    after_guillemet = re.compile(r"«[ \t]+")
    at_hour = re.compile(r"(?<![^\s(])à[ \t]+(?=\d)")
    after_number = re.compile(r"(?<![^\s(«])(\d+(?:[.,]\d+)*)[ \t]+(?=[\w€%$£])")

    def always(text: str) -> str:
        text = before_punctuation.sub(t.NBSP, text)
        text = after_guillemet.sub("«" + t.NBSP, text)
        text = at_hour.sub("à" + t.NBSP, text)
        return after_number.sub(lambda m: m.group(1) + t.NBSP, text)

    rng = random.Random(20261128)
    pieces = [*"ab 12,.:;!?»«à€%\t(hA9 \u2009", "à ", "« ", " :", "1 200", "1,5", "x1 ", "(à ", "12 rue", "à 9h"]
    pieces += ["\n", "\xa0"]
    for _ in range(20_000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 14)))
        assert t.french_spacing(text) == always(text), repr(text)
        assert t.french_spacing_html(f"<p>{text}</p>") == f"<p>{always(text)}</p>" or text.isspace(), repr(text)


def test_a_page_is_spaced_as_each_text_between_its_tags_would_be():
    """french_spacing_html puts the texts of a page through the rules in one string: each text must come
    out as it would alone (random pages of text, tags, comments, style and script, stray < and >)."""
    import random

    from edumail import typography as t

    def alone(page: str) -> str:
        parts = t._MARKUP.split(page)
        for i in range(0, len(parts), 2):
            parts[i] = t.french_spacing(parts[i])
        return "".join(parts)

    rng = random.Random(28112026)
    pieces = [*"ab 12:;!?»«à€\t(h9 <>", "à ", "« ", " :", "1 200", "\n", "\xa0", "\x1f", "<p>", "</p>"]
    pieces += ['<a href="x : 1 2">', "</a>", "<!-- a : 1 > 2 -->", "<style>a { b: 1 2 }</style>", "<br>"]
    pieces += ["<script>x ? 1 : 2</script>", "<!--[if mso]><x> : </x><![endif]-->", "<STYLE x>1 2</STYLE >"]
    for _ in range(20_000):
        page = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 20)))
        assert t.french_spacing_html(page) == alone(page), repr(page)
