"""render.py: front matter, the sandbox, strict variables, filters, layouts, inlining, the text part."""

from __future__ import annotations

import os
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from edumail.errors import EdumailError, NotFound, RenderError
from edumail.render import TemplateLibrary, html_to_text, render
from edumail.settings import Sender, Settings

NOW = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
LAYOUT = """<!DOCTYPE html>
<html lang="fr"><head><title>{{ subject }}</title>
<style>
p { color: #123456; padding: 0 0 16px 0; }
.note { font-size: 13px; }
@media only screen and (max-width: 620px) { p { font-size: 18px !important; } }
</style></head>
<body><div class="wrap">{{ content }}</div>
<p><a href="{{ unsubscribe_url }}">Se désinscrire</a> · {{ sender.name }}</p>
</body></html>
"""


@pytest.fixture
def settings() -> Settings:
    return Settings(
        sender=Sender("Centre de formation Exemple", "contact@centre.example", "inscriptions@centre.example")
    )


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "templates"
    (root / "layouts").mkdir(parents=True)
    (root / "layouts" / "base.html").write_text(LAYOUT, encoding="utf-8")
    return root


@pytest.fixture
def library(folder: Path, settings: Settings) -> TemplateLibrary:
    return TemplateLibrary(folder, settings)


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def page(body: str, subject: str = "Bonjour {{ contact.first_name }}", extra: str = "") -> str:
    return f'---\nsubject: "{subject}"\n{extra}---\n{body}'


def contact(**fields: object) -> dict:
    base = {"email": "camille@example.org", "first_name": "Camille", "last_name": "Martin", "tags": ["a"]}
    base.update(fields)
    return base


def plain(text: str) -> str:
    """Text with its French no-break spaces as plain ones, for checks about words rather than spacing."""
    return text.replace("\u00a0", " ")


def go(library: TemplateLibrary, name: str = "t", *, event: dict | None = None, **kwargs: object):
    return render(
        library,
        name,
        contact=kwargs.pop("who", None) or contact(),
        event=event if event is not None else {},
        now=NOW,
        unsubscribe_url="https://mail.centre.example/u/TOKEN",
        preferences_url="https://mail.centre.example/p/TOKEN",
        **kwargs,
    )


def error_of(library: TemplateLibrary, name: str = "t", **kwargs: object) -> RenderError:
    with pytest.raises(RenderError) as caught:
        go(library, name, **kwargs)
    return caught.value


# --- front matter and names -----------------------------------------------------


def test_subject_and_preheader_come_from_the_front_matter(folder, library):
    write(folder, "t.html", page("<p>Corps</p>", extra="preheader: Pour {{ contact.last_name }}\n"))
    mail = go(library)
    assert mail.template == "t"
    assert mail.subject == "Bonjour Camille"
    assert mail.preheader == "Pour Martin"


def test_names_lists_templates_but_not_layouts_or_partials(folder, library):
    write(folder, "b.html", page("b"))
    write(folder, "a.html", page("a"))
    write(folder, "_partiel.html", "{% macro x() %}x{% endmacro %}")
    assert library.names() == ["a", "b"]
    assert library.layouts() == ["base"]
    assert library.exists("a") and not library.exists("base") and not library.exists("../a")


def test_unknown_template_is_not_found_with_the_list_and_a_suggestion(folder, library):
    write(folder, "bienvenue.html", page("x"))
    with pytest.raises(NotFound, match=r"unknown template 'bienvenu' \(did you mean 'bienvenue'\?\).*has: bienvenue"):
        go(library, "bienvenu")


def test_a_name_with_a_path_is_not_a_template(folder, library):
    write(folder, "t.html", page("x"))
    with pytest.raises(NotFound):
        go(library, "../templates/t")


def test_front_matter_that_is_not_yaml_names_its_line(folder, library):
    write(folder, "t.html", "---\nsubject: ok\npreheader: [unclosed\n---\n<p>x</p>")
    error = error_of(library)
    assert str(error).startswith("templates/t.html:")
    assert "front matter" in str(error) and "YAML" in str(error)
    assert error.problem.line in (3, 4)


def test_unquoted_jinja_in_front_matter_says_to_quote_it(folder, library):
    write(folder, "t.html", "---\nsubject: {{ contact.first_name }}\n---\n<p>x</p>")
    error = error_of(library)
    assert error.problem.file == "templates/t.html" and error.problem.line == 2
    assert "in quotes" in str(error)


def test_unclosed_front_matter_is_an_error_at_line_one(folder, library):
    write(folder, "t.html", "---\nsubject: x\n<p>x</p>")
    assert str(error_of(library)).startswith("templates/t.html:1: the front matter")


def test_unknown_front_matter_key_suggests_the_right_one(folder, library):
    write(folder, "t.html", "---\nsubject: x\nprehead: y\n---\n<p>x</p>")
    assert str(error_of(library)) == (
        "templates/t.html:3: unknown front matter key 'prehead' (did you mean 'preheader'?) "
        "(expected subject, preheader, layout, attachments)"
    )


def test_a_template_without_subject_is_an_error(folder, library):
    write(folder, "t.html", "<p>Pas de sujet</p>")
    assert "no subject" in str(error_of(library))


def test_a_missing_layout_names_the_layout_line(folder, library):
    write(folder, "t.html", "---\nsubject: x\nlayout: principal\n---\n<p>x</p>")
    assert str(error_of(library)) == "templates/t.html:3: unknown layout 'principal' (templates/layouts/ has: base)"


def test_layout_may_be_written_with_folder_and_extension(folder, library):
    write(folder, "t.html", page("<p>x</p>", extra="layout: layouts/base.html\n"))
    assert "Se désinscrire" in go(library).html


def test_a_non_utf8_template_names_the_line_of_the_bad_byte(folder, library):
    (folder / "t.html").write_bytes(page("<p>ok</p>\n<p>caf\xe9</p>").encode("cp1252"))
    error = error_of(library)
    assert error.problem.file == "templates/t.html" and error.problem.line == 5
    assert "not UTF-8" in str(error)


def test_a_non_utf8_layout_is_reported_on_the_layout(folder, library):
    (folder / "layouts" / "base.html").write_bytes("<p>\n\xe9</p>".encode("latin-1"))
    write(folder, "t.html", page("x", extra="layout: base\n"))
    assert str(error_of(library)).startswith("templates/layouts/base.html:2: not UTF-8")


def test_a_byte_order_mark_is_accepted(folder, library):
    (folder / "t.html").write_bytes(b"\xef\xbb\xbf" + page("<p>ok</p>").encode())
    assert go(library).subject == "Bonjour Camille"


# --- strict variables and the sandbox ------------------------------------------


def test_undefined_contact_field_names_file_line_and_variable(folder, library):
    write(folder, "t.html", page("<p>a</p>\n<p>{{ contact.ville }}</p>"))
    error = error_of(library)
    assert str(error).startswith("templates/t.html:5: undefined variable 'contact.ville'")


def test_undefined_event_field_lists_what_the_event_has(folder, library):
    write(folder, "t.html", page("{{ event.lieu }}"))
    message = str(error_of(library, event={"formation": "Excel"}))
    assert message.startswith("templates/t.html:4: undefined variable 'event.lieu' (event has: formation;")
    assert "default" in message


def test_undefined_top_level_variable(folder, library):
    write(folder, "t.html", page("\n{{ lien }}"))
    assert str(error_of(library)) == "templates/t.html:5: undefined variable 'lien'"


def test_undefined_variable_in_the_subject_names_the_subject_line(folder, library):
    write(folder, "t.html", '---\npreheader: p\nsubject: "{{ event.formation }}"\n---\nx')
    assert str(error_of(library)).startswith("templates/t.html:3: undefined variable 'event.formation'")


def test_undefined_variable_in_the_layout_names_the_layout(folder, library):
    write(folder, "layouts/base.html", "<html><body>\n{{ content }}\n{{ contact.societe }}</body></html>")
    write(folder, "t.html", page("x", extra="layout: base\n"))
    assert str(error_of(library)).startswith("templates/layouts/base.html:3: undefined variable 'contact.societe'")


def test_a_syntax_error_names_file_and_line(folder, library):
    write(folder, "t.html", page("<p>\n{% if contact.first_name %}\n<b>x</b>\n"))
    error = error_of(library)
    assert error.problem.file == "templates/t.html" and error.problem.line >= 5
    assert "syntax error" in str(error)


def test_sandbox_refuses_python_internals(folder, library):
    write(folder, "t.html", page("<p>ok</p>\n{{ ''.__class__.__mro__ }}"))
    message = str(error_of(library))
    assert message.startswith("templates/t.html:5: refused by the sandbox")
    assert "__class__" in message


def test_sandbox_refuses_reaching_globals_through_a_filter(folder, library):
    write(folder, "t.html", page("{{ (contact.first_name|attr('__class__')) }}"))
    message = str(error_of(library))
    assert message.startswith("templates/t.html:4: ")
    assert "sandbox" in message


def test_templates_cannot_call_dict_methods_on_data(folder, library):
    write(folder, "t.html", page("{{ event.items }}"))
    assert "undefined variable 'event.items'" in str(error_of(library, event={"a": 1}))
    assert go(library, event={"items": "trois"}).text.strip().startswith("trois")


def test_a_value_passed_to_a_macro_fails_at_the_calling_line(folder, library):
    write(folder, "_m.html", "{% macro b(url) %}\n<a href='{{ url }}'>x</a>\n{% endmacro %}")
    write(folder, "t.html", page('{% from "_m.html" import b %}\n\n{{ b(event.lien) }}'))
    assert str(error_of(library)).startswith("templates/t.html:6: undefined variable 'event.lien'")


def test_a_runtime_error_is_a_render_error_with_its_line(folder, library):
    write(folder, "t.html", page("x\n{{ 1 / 0 }}"))
    assert str(error_of(library)).startswith("templates/t.html:5: ZeroDivisionError")


def test_render_errors_are_edumail_errors(folder, library):
    write(folder, "t.html", page("{{ nope }}"))
    assert isinstance(error_of(library), EdumailError)


# --- context --------------------------------------------------------------------


def test_contact_custom_fields_are_flattened_and_builtins_win(folder, library):
    write(folder, "t.html", page("{{ contact.ville }} {{ contact.email }} {{ contact.tags | join(',') }}"))
    who = contact(fields='{"ville": "Lyon", "email": "spoof@example.org"}', tags=["x", "y"])
    assert go(library, who=who).text.startswith("Lyon camille@example.org x,y")


def test_builtin_contact_fields_always_exist(folder, library):
    write(folder, "t.html", page("[{{ contact.stage }}][{{ contact.tags | length }}][{{ contact.timezone }}]"))
    assert go(library, who={"email": "a@b.example"}).text.startswith("[][0][None]")


def test_sender_comes_from_the_settings(folder, library):
    write(folder, "t.html", page("{{ sender.name }} {{ sender.email }} {{ sender.reply_to }}"))
    assert go(library).text.startswith("Centre de formation Exemple contact@centre.example inscriptions@centre.example")


def test_extra_variables_are_available(folder, library):
    write(folder, "t.html", page('<a href="{{ confirm_url }}">Confirmer</a>'))
    mail = go(library, extra={"confirm_url": "https://mail.centre.example/k/abc"})
    assert 'href="https://mail.centre.example/k/abc"' in mail.html


def test_extra_cannot_replace_the_contact(folder, library):
    write(folder, "t.html", page("{{ contact.first_name }}"))
    assert go(library, extra={"contact": {"first_name": "Pirate"}}).text.startswith("Camille")


def test_contact_data_is_escaped_in_html(folder, library):
    write(folder, "t.html", page("<p>{{ contact.first_name }}</p>", subject="{{ contact.first_name }}"))
    mail = go(library, who=contact(first_name="<b>Léa</b> & co"))
    assert "&lt;b&gt;Léa&lt;/b&gt; &amp; co" in mail.html
    assert mail.subject == "<b>Léa</b> & co"
    assert "<b>Léa</b> & co" in mail.text


def test_the_subject_is_one_line_whatever_the_data(folder, library):
    write(folder, "t.html", page("x", subject="Bonjour {{ contact.first_name }}"))
    mail = go(library, who=contact(first_name="Eve\r\nBcc: victim@example.org"))
    assert mail.subject == "Bonjour Eve Bcc: victim@example.org"


# --- filters --------------------------------------------------------------------


def test_default_filter_covers_missing_none_and_empty_values(folder, library):
    write(
        folder, "t.html", page("{{ event.a | default('A') }}-{{ event.b | default('B') }}-{{ event.c | default('C') }}")
    )
    assert go(library, event={"b": None, "c": "  "}).text.startswith("A-B-C")


def test_default_filter_keeps_real_values(folder, library):
    write(folder, "t.html", page("{{ event.a | default('A') }}-{{ event.n | default(5) }}"))
    assert go(library, event={"a": "x", "n": 0}).text.startswith("x-0")


def test_date_filter_defaults_to_a_french_long_date(folder, library):
    write(folder, "t.html", page("{{ event.session_start | date }}"))
    assert plain(go(library, event={"session_start": "2026-12-01T09:00"}).text).startswith("mardi 1 décembre 2026")


def test_datetime_filter_defaults_to_french_date_and_time(folder, library):
    write(folder, "t.html", page("{{ event.session_start | datetime }}"))
    assert plain(go(library, event={"session_start": "2026-12-01T09:00"}).text).startswith(
        "mardi 1 décembre 2026 à 9h00"
    )


def test_date_filter_takes_a_babel_pattern(folder, library):
    write(folder, "t.html", page("""{{ event.session_start | date("EEEE d MMMM 'à' H'h'mm") }}"""))
    assert plain(go(library, event={"session_start": "2026-12-01T09:00:00"}).text).startswith("mardi 1 décembre à 9h00")


def test_date_filter_converts_utc_times_to_the_project_timezone(folder, library):
    write(folder, "t.html", page("{{ event.at | datetime }}"))
    assert plain(go(library, event={"at": "2026-12-01T08:00:00Z"}).text).startswith("mardi 1 décembre 2026 à 9h00")


def test_date_filter_accepts_datetime_and_date_objects(folder, library):
    write(folder, "t.html", page("{{ event.a | datetime }} / {{ event.b | date }} / {{ now | date('d MMMM') }}"))
    event = {"a": datetime(2026, 12, 1, 9, 0), "b": date(2026, 12, 2)}
    assert plain(go(library, event=event).text).startswith(
        "mardi 1 décembre 2026 à 9h00 / mercredi 2 décembre 2026 / 30 novembre"
    )


def test_date_only_strings_are_not_shifted_by_timezones(folder, library):
    write(folder, "t.html", page("{{ event.jour | date }}"))
    who = contact(timezone="Pacific/Honolulu")
    assert plain(go(library, who=who, event={"jour": "2026-12-01"}).text).startswith("mardi 1 décembre 2026")


def test_a_contact_timezone_changes_the_time_shown(folder, library):
    write(folder, "t.html", page("{{ event.at | date('H:mm') }}"))
    who = contact(timezone="America/Montreal")
    assert go(library, who=who, event={"at": "2026-12-01T09:00"}).text.startswith("3:00")


def test_the_tz_argument_forces_a_timezone(folder, library):
    write(folder, "t.html", page("{{ event.at | date('H:mm', tz='Europe/Paris') }}"))
    who = contact(timezone="America/Montreal")
    assert go(library, who=who, event={"at": "2026-12-01T09:00"}).text.startswith("9:00")


def test_a_bad_contact_timezone_falls_back_to_the_project_one(folder, library):
    write(folder, "t.html", page("{{ event.at | date('H:mm') }}"))
    assert go(library, who=contact(timezone="Mars/Olympus"), event={"at": "2026-12-01T09:00"}).text.startswith("9:00")


def test_date_filter_on_a_non_date_names_the_line(folder, library):
    write(folder, "t.html", page("\n{{ event.at | date }}"))
    message = str(error_of(library, event={"at": "demain"}))
    assert message == ("templates/t.html:5: date: 'demain' is not a date (expected ISO 8601 such as 2026-12-01T09:00)")


def test_date_filter_on_an_empty_value_says_to_use_default(folder, library):
    write(folder, "t.html", page("{{ event.at | date }}"))
    assert "default" in str(error_of(library, event={"at": ""}))


def test_date_filter_on_an_undefined_value_names_it(folder, library):
    write(folder, "t.html", page("{{ event.at | date }}"))
    assert "undefined variable 'event.at'" in str(error_of(library))


def test_english_locale_gets_english_dates(folder, settings):
    english = Settings(sender=settings.sender, locale="en_GB")
    library = TemplateLibrary(folder, english)
    write(folder, "t.html", page("{{ event.at | date }}"))
    assert go(library, event={"at": "2026-12-01T09:00"}).text.startswith("Tuesday, 1 December 2026")


# --- html, layout, inlining, text -----------------------------------------------


def test_css_is_inlined_and_media_queries_kept(folder, library):
    write(folder, "t.html", page('<p class="note">Bonjour</p>', extra="layout: base\n"))
    html = go(library).html
    assert 'style="color: #123456;padding: 0 0 16px 0;font-size: 13px;"' in html
    assert "@media only screen and (max-width: 620px)" in html
    assert "p { color" not in html


def test_the_preheader_is_hidden_preview_text_first_in_the_body(folder, library):
    write(folder, "t.html", page("<p>Corps</p>", extra="preheader: Aperçu & plus\nlayout: base\n"))
    html = go(library).html
    after_body = html.split("<body", 1)[1].split(">", 1)[1]
    assert after_body.startswith('<div style="display:none;')
    assert "Aperçu &amp; plus" in after_body[:400]
    assert "Aperçu" not in go(library).text


def test_no_preheader_means_no_hidden_block(folder, library):
    write(folder, "t.html", page("<p>Corps</p>", extra="layout: base\n"))
    assert "display:none" not in go(library).html


def test_a_template_without_layout_becomes_a_full_document(folder, library):
    write(folder, "t.html", page("<p>Corps</p>", extra="preheader: P\n"))
    html = go(library).html
    assert html.startswith("<!DOCTYPE html>") and "<title>Bonjour Camille</title>" in html
    assert '<html lang="fr">' in html


def test_the_text_part_comes_from_the_txt_file_when_present(folder, library):
    write(folder, "t.html", page("<p>HTML</p>"))
    write(folder, "t.txt", "Bonjour {{ contact.first_name }} & co,\nDésinscription : {{ unsubscribe_url }}\n")
    text = go(library).text
    assert text == "Bonjour Camille & co,\nDésinscription\u00a0: https://mail.centre.example/u/TOKEN\n"


def test_an_undefined_variable_in_the_txt_part_names_the_txt_file(folder, library):
    write(folder, "t.html", page("<p>HTML</p>"))
    write(folder, "t.txt", "ligne\n{{ event.x }}\n")
    assert str(error_of(library)).startswith("templates/t.txt:2: undefined variable 'event.x'")


def test_the_derived_text_keeps_links_as_urls(folder, library):
    write(
        folder,
        "t.html",
        page('<p>Voir <a href="https://x.example/p?a=1&amp;b=2">le programme</a>.</p>', extra="layout: base\n"),
    )
    text = go(library).text
    assert "Voir le programme (https://x.example/p?a=1&b=2)." in text
    assert "Se désinscrire (https://mail.centre.example/u/TOKEN)" in text


def test_the_derived_text_has_paragraphs_lists_and_line_breaks():
    text = html_to_text(
        "<html><head><title>T</title><style>p{}</style></head><body><h1>Titre</h1><p>Un<br>deux</p>"
        "<ul><li>a</li><li>b</li></ul><!-- note --><img src='x.png' alt='Logo du centre'>"
        "<p><a href='mailto:a@b.example'>a@b.example</a> <a href='#top'>haut</a> "
        "<a href='https://x.example'>https://x.example</a>&nbsp;&eacute;</p></body></html>"
    )
    assert text == "Titre\n\nUn\ndeux\n\n- a\n- b\n\nLogo du centre\n\na@b.example haut https://x.example é\n"


# --- caching --------------------------------------------------------------------


def test_a_changed_template_is_reloaded(folder, library):
    path = write(folder, "t.html", page("<p>avant</p>"))
    assert "avant" in go(library).text
    path.write_text(page("<p>après, plus long</p>"), encoding="utf-8")
    stamp = path.stat().st_mtime + 5
    os.utime(path, (stamp, stamp))
    assert "après" in go(library).text


def test_a_changed_layout_is_reloaded(folder, library):
    write(folder, "t.html", page("<p>x</p>", extra="layout: base\n"))
    go(library)
    layout = write(folder, "layouts/base.html", "<html><body>NOUVEAU {{ content }}</body></html>")
    stamp = layout.stat().st_mtime + 5
    os.utime(layout, (stamp, stamp))
    assert "NOUVEAU" in go(library).html


def test_get_returns_the_cached_template_while_unchanged(folder, library):
    write(folder, "t.html", page("x"))
    assert library.get("t") is library.get("t")
