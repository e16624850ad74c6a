"""check_templates: every template problem as `file:line: message`, found without rendering or sending."""

from __future__ import annotations

from pathlib import Path

import pytest

from edumail.errors import Problem
from edumail.render import TemplateLibrary
from edumail.render_check import (
    check_templates,
    required_event_fields,
    sample_contact,
    sample_event,
    sample_session,
    variables,
)
from edumail.settings import Sender, Settings

LAYOUT = (
    "<html><body>{{ content }}<a href='{{ unsubscribe_url }}'>x</a> {{ sender.name }} {{ subject }}</body></html>\n"
)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "templates"
    (root / "layouts").mkdir(parents=True)
    (root / "layouts" / "base.html").write_text(LAYOUT, encoding="utf-8")
    return root


@pytest.fixture
def library(folder: Path) -> TemplateLibrary:
    return TemplateLibrary(folder, Settings(sender=Sender("Centre", "contact@centre.example")))


def write(folder: Path, name: str, body: str, front: str = 'subject: "Bonjour"\n') -> None:
    (folder / name).write_text(f"---\n{front}---\n{body}", encoding="utf-8")


def check(library: TemplateLibrary, **kwargs) -> list[str]:
    kwargs.setdefault("contact_fields", set())
    return [str(p) for p in check_templates(library, **kwargs)]


def test_a_clean_template_has_no_problem(folder, library):
    write(folder, "t.html", "<p>{{ contact.first_name }} {{ event.x }} {{ now | date }} {{ preferences_url }}</p>")
    assert check(library) == []


def test_problems_are_problem_objects_with_file_and_line(folder, library):
    write(folder, "t.html", "x\n{{ contact.ville }}")
    assert check_templates(library, contact_fields=set()) == [
        Problem(
            "templates/t.html",
            5,
            "undefined variable 'contact.ville' (contacts have: consent, email, "
            "first_name, last_name, stage, tags, timezone; write `| default(...)` if it is optional)",
        )
    ]


def test_custom_contact_fields_are_known(folder, library):
    write(folder, "t.html", "{{ contact.ville }} {{ contact['code postal'] }}")
    assert check(library, contact_fields={"ville", "code postal"}) == []


def test_an_unknown_contact_field_suggests_a_close_one(folder, library):
    write(folder, "t.html", "{{ contact.frist_name }}")
    assert "(did you mean 'first_name'?)" in check(library)[0]


def test_event_fields_are_free_when_unknown(folder, library):
    write(folder, "t.html", "{{ event.anything }}")
    assert check(library) == []
    assert check(library, event_fields={"other": {"a"}}) == []


def test_event_fields_are_checked_against_the_triggering_events(folder, library):
    write(folder, "t.html", "{{ event.formation }}\n{{ event.lieu }}", front='subject: "{{ event.session }}"\n')
    assert check(library, event_fields={"t": {"formation"}}) == [
        "templates/t.html:2: undefined variable 'event.session' (the events that trigger this template carry: "
        "formation; write `| default(...)` if it is optional)",
        "templates/t.html:5: undefined variable 'event.lieu' (the events that trigger this template carry: "
        "formation; write `| default(...)` if it is optional)",
    ]


def test_optional_uses_are_not_problems(folder, library):
    write(
        folder,
        "t.html",
        "{{ event.lieu | default('ici') }} {{ contact.ville | d('') }}\n"
        "{% if event.lien is defined %}<a href='{{ event.lien }}'>x</a>{% endif %}",
    )
    assert check(library, event_fields={"t": set()}) == []


def test_an_unknown_top_level_name_suggests_a_close_one(folder, library):
    write(folder, "t.html", "{{ contcat.first_name }}")
    assert check(library)[0].startswith("templates/t.html:4: undefined variable 'contcat' (did you mean 'contact'?)")


def test_local_names_and_extras_are_not_problems(folder, library):
    write(
        folder,
        "t.html",
        "{% set x = 1 %}{{ x }}{% for tag in contact.tags %}{{ tag }}{{ loop.index }}{% endfor %}"
        "{% macro m(a) %}{{ a }}{% endmacro %}{{ m(1) }}{{ confirm_url }}{{ range(2) | list }}",
    )
    assert check(library) == []


def test_an_unknown_sender_field_is_a_problem(folder, library):
    write(folder, "t.html", "{{ sender.phone }}")
    assert check(library) == [
        "templates/t.html:4: undefined variable 'sender.phone' (sender has: name, email, reply_to)"
    ]


def test_a_sandbox_escape_attempt_is_reported(folder, library):
    write(folder, "t.html", "ok\n{{ ''.__class__.__mro__ }}")
    problems = check(library)
    assert (
        problems[0]
        == "templates/t.html:5: refused by the sandbox: templates cannot reach Python internals ('__class__')"
    )


def test_a_syntax_error_is_reported_with_its_line(folder, library):
    write(folder, "t.html", "<p>\n{% for x in contact.tags %}\n{{ x }\n")
    problems = check(library)
    assert len(problems) == 1 and problems[0].startswith("templates/t.html:6: syntax error")


def test_a_missing_layout_is_reported(folder, library):
    write(folder, "t.html", "x", front="subject: s\nlayout: principal\n")
    assert check(library) == ["templates/t.html:3: unknown layout 'principal' (templates/layouts/ has: base)"]


def test_bad_front_matter_is_reported(folder, library):
    (folder / "t.html").write_text("---\nsubject: [\n---\nx", encoding="utf-8")
    problems = check(library)
    assert len(problems) == 1 and problems[0].startswith("templates/t.html:") and "front matter" in problems[0]


def test_a_non_utf8_file_is_reported(folder, library):
    (folder / "t.html").write_bytes("---\nsubject: s\n---\n\xe9t\xe9".encode("latin-1"))
    assert check(library) == ["templates/t.html:4: not UTF-8 text (byte 19); save the file as UTF-8"]


def test_layout_problems_are_reported_on_the_layout(folder, library):
    (folder / "layouts" / "base.html").write_text("{{ content }}\n{{ contact.societe }}\n{% if %}", encoding="utf-8")
    problems = check(library)
    assert problems == [problems[0]] and problems[0].startswith("templates/layouts/base.html:3: syntax error")
    (folder / "layouts" / "base.html").write_text("{{ content }}\n{{ contact.societe }}\n", encoding="utf-8")
    assert check(library)[0].startswith("templates/layouts/base.html:2: undefined variable 'contact.societe'")


def test_the_text_part_is_checked_too(folder, library):
    write(folder, "t.html", "x")
    (folder / "t.txt").write_text("ok\n{{ contact.societe }}\n", encoding="utf-8")
    assert check(library)[0].startswith("templates/t.txt:2: undefined variable 'contact.societe'")


def test_a_text_part_without_its_template_is_reported(folder, library):
    (folder / "seul.txt").write_text("x", encoding="utf-8")
    assert check(library) == ["templates/seul.txt: text part without a template: add seul.html"]


def test_every_template_is_checked_and_problems_are_sorted(folder, library):
    write(folder, "b.html", "{{ x }}")
    write(folder, "a.html", "\n{{ y }}\n{{ z }}")
    assert [p.split(" ")[0] for p in check(library)] == [
        "templates/a.html:5:",
        "templates/a.html:6:",
        "templates/b.html:4:",
    ]


def test_a_file_name_that_cannot_be_a_template_name_is_reported(folder, library):
    write(folder, "mon modèle.html", "x")
    write(folder, "relancé.html", "x")
    assert library.names() == ["relancé"]
    assert check(library) == [
        "templates/mon modèle.html: not a usable template name: use letters, digits, -, _ and . (rename the file)"
    ]


def test_variables_lists_what_a_template_reads(folder, library):
    write(
        folder,
        "t.html",
        "{{ contact.first_name }} {{ event.lieu | default('') }} {{ confirm_url }}",
        front='subject: "{{ event.formation }}"\n',
    )
    assert variables(library, "t") == {"contact.first_name", "event.lieu", "confirm_url", "event.formation"}
    assert required_event_fields(library, "t") == {"formation"}


def test_documented_event_fields_come_from_the_comment(folder, library):
    write(folder, "t.html", "{#- event: formation, session_start, lieu\n    Requises : formation. -#}\nx")
    assert library.documented_event_fields("t") == ["formation", "session_start", "lieu"]


def test_sample_data_is_plausible_and_fresh():
    contact = sample_contact()
    contact["tags"].append("changed")
    assert "changed" not in sample_contact()["tags"]
    assert sample_contact()["first_name"] == "Camille"
    assert sample_event("relance-inscription")["session_start"].startswith("2026-12-01")
    assert sample_event("rappel-session") == {"session": sample_session()["id"]}  # a session journey's enrolment
    assert sample_session()["start"].startswith("2026-12-14T09:30")
    assert sample_event("double-optin") == {}
    assert sample_event("inconnu")["formation"]


# --- through `edumail check` --------------------------------------------------------


def test_edumail_check_reports_an_undefined_variable_with_its_line(cli, project_dir):
    write(project_dir / "templates", "t.html", "<p>ok</p>\n{{ contact.societe }}")
    result = cli("check")
    assert result.exit_code == 1
    assert "templates/t.html:5: undefined variable 'contact.societe'" in result.output


def test_edumail_check_knows_the_custom_fields_of_stored_contacts(cli, project_dir):
    from edumail import project as project_module

    project = project_module.load(project_dir)
    project.store().insert_contact(
        {"email": "a@example.org", "fields": '{"societe": "ACME"}'}, "2026-11-20T10:00:00.000000Z"
    )
    project.close()
    write(project_dir / "templates", "t.html", "{{ contact.societe }}")
    result = cli("check")
    assert "contact.societe" not in result.output


def test_session_fields_are_the_sessions_model_and_its_custom_fields(folder, library):
    write(
        folder,
        "t.html",
        "{{ session.formation }} {{ session.start }} {{ session.lieu }} {{ session.id }}\n{{ session.salle }}",
    )
    assert check(library) == [
        "templates/t.html:5: undefined variable 'session.salle' (sessions have: cancel_reason, end, formateur, "
        "formation, id, lieu, start, status; write `| default(...)` if it is optional)"
    ]
    assert check(library, session_fields={"salle"}) == []


def test_an_unknown_session_field_suggests_a_close_one(folder, library):
    write(folder, "t.html", "{{ session.strat | datetime }} {{ session.convocation | default('') }}")
    assert check(library) == [
        "templates/t.html:4: undefined variable 'session.strat' (did you mean 'start'?) (sessions have: "
        "cancel_reason, end, formateur, formation, id, lieu, start, status; write `| default(...)` if it is optional)"
    ]
